"""The agent op ``verify``: which core files of an installation differ from its release.

The equivalent of ``wp core verify-checksums`` for every CMS: the controller sends the
pristine release's checksums (registered with ``patchd releases add``) and the agent
hashes the installation's copies on the host, through :class:`patchd.safefs.SafeRoot`.

NOTE: stdlib-only; runs on the hosts inside the agent.
"""

from __future__ import annotations

import hashlib
from typing import Any, Dict, Iterator  # noqa: UP035

from patchd.agent.ops import op
from patchd.errors import PatchdError

JSONDict = Dict[str, Any]  # noqa: UP006

#: Core files larger than this are reported as modified without hashing them.
MAX_CORE_FILE = 32 * 1024 * 1024


@op("verify")
def verify(args: JSONDict) -> Iterator[JSONDict]:
    """``{"checksums": {KEY: {path: sha256}}, "installations": [{"account", "root",
    "path", "key", "known"}]}`` -> one item per installation with ``modified``,
    ``missing`` and ``patched`` core files (relative to the installation), or ``error``.

    ``known`` (optional) maps a file to the post-images of bundles patchd applied there,
    ``[[sha256, bundle], ...]``: a file differing from its release but equal to one of
    them is ``patched`` (``{"path", "bundle"}``), not modified (issue 16: patchd's own
    patches looked like customer modifications).
    """
    checksums: JSONDict = args.get("checksums") or {}
    items = args.get("installations") or []
    for item in items:
        yield _verify_one(item, checksums.get(item.get("key"), {}))
    return {"installations": len(items)}


def _verify_one(item: JSONDict, expected: JSONDict) -> JSONDict:
    from patchd.safefs import SafeRoot

    out: JSONDict = {
        "account": item.get("account"),
        "path": item.get("path", ""),
        "modified": [],
        "missing": [],
        "patched": [],
        "error": None,
    }
    known: JSONDict = item.get("known") or {}
    base = item.get("path") or ""
    try:
        with SafeRoot(item["root"]) as root:
            for rel in sorted(expected):
                full = f"{base}/{rel}" if base else rel
                try:
                    data = root.read_bytes(full, max_size=MAX_CORE_FILE)
                except FileNotFoundError:
                    out["missing"].append(rel)
                    continue
                except (PatchdError, OSError):
                    out["modified"].append(rel)
                    continue
                digest = hashlib.sha256(data).hexdigest()
                if digest == expected[rel]:
                    continue
                bundle = next((b for sha, b in known.get(rel, ()) if sha == digest), None)
                if bundle is None:
                    out["modified"].append(rel)
                else:
                    out["patched"].append({"path": rel, "bundle": bundle})
    except (PatchdError, OSError) as exc:
        out["error"] = str(exc)
    return out
