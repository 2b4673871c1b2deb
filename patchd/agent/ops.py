"""The agent's operations: a registry plus the built-in ``ping``, ``echo`` and ``scan``.

An op is a function ``args -> Iterator[item]``, usually a generator: every value it yields
is sent as an ``item`` event, and the value it ``return``s (a dict, or ``None`` for ``{}``)
becomes the data of the ``done`` event. An exception ends the request with an ``error``
event; the agent keeps serving. Adding an op is one decorated function::

    @op("dryrun")
    def dryrun(args):
        ...
        yield {"account": ..., "outcome": ...}

placed in this module or in a module ``patchd/agent/ops_<name>.py`` (found and imported by
:func:`load_ops`, so other packages need not edit this file).

NOTE: stdlib-only and Python 3.8 compatible; this module runs on the hosts. Ops import the
patchd modules they need lazily, so a broken detector breaks ``scan`` (reported per
account), not the agent.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import platform
import socket
import sys
import time
import traceback
from typing import Any, Callable, Dict, Iterator  # noqa: UP035

import patchd
from patchd.agent import protocol
from patchd.errors import PatchdError

# NOTE: typing's aliases, not the builtins: these aliases are evaluated at runtime and must
# work on the hosts' Python 3.8.
JSONDict = Dict[str, Any]  # noqa: UP006
OpFunc = Callable[[JSONDict], Iterator[JSONDict]]

OPS: dict[str, OpFunc] = {}
"""Every op the agent serves, by name."""

OP_MODULE_PREFIX = "ops_"
"""Modules of ``patchd.agent`` whose names start with this are imported by :func:`load_ops`."""

_RUNTIME: JSONDict = {"package_sha256": None, "op_load_errors": {}}


def op(name: str) -> Callable[[OpFunc], OpFunc]:
    """Register the decorated function as the op ``name``; a name can be taken only once."""

    def register(func: OpFunc) -> OpFunc:
        if name in OPS and OPS[name] is not func:
            raise ValueError(f"agent op {name!r} is registered twice")
        OPS[name] = func
        return func

    return register


def set_package_sha256(digest: str | None) -> None:
    """Record the sha256 of the zip this agent was started from (reported by ``ping``)."""
    _RUNTIME["package_sha256"] = digest


def load_ops() -> list[str]:
    """Import every ``patchd.agent.ops_*`` module so its ops register; return their names.

    A module that fails to import is recorded (``ping`` reports it) instead of stopping the
    agent, so the other ops stay usable.
    """
    import patchd.agent as agent_pkg

    loaded = []
    for info in pkgutil.iter_modules(agent_pkg.__path__):
        if not info.name.startswith(OP_MODULE_PREFIX):
            continue
        module = "patchd.agent." + info.name
        try:
            importlib.import_module(module)
        except Exception:
            _RUNTIME["op_load_errors"][module] = traceback.format_exc()
        else:
            loaded.append(module)
    return loaded


@op("ping")
def ping(args: JSONDict) -> Iterator[JSONDict]:
    """Describe the agent and its host: versions, identity, process, available ops."""
    yield from ()
    return {
        "agent_version": patchd.__version__,
        "protocol": protocol.PROTOCOL_VERSION,
        "package_sha256": _RUNTIME["package_sha256"],
        "package_path": os.path.dirname(os.path.dirname(patchd.__file__ or "")),
        "python_version": platform.python_version(),
        "python_executable": sys.executable,
        "uid": os.getuid(),
        "euid": os.geteuid(),
        "hostname": socket.gethostname(),
        "pid": os.getpid(),
        "ops": sorted(OPS),
        "op_load_errors": dict(_RUNTIME["op_load_errors"]),
    }


@op("echo")
def echo(args: JSONDict) -> Iterator[JSONDict]:
    """Diagnostics: yield ``count`` items carrying ``payload``, ``interval`` seconds apart,
    then fail with ``fail`` as the message if it is set (tests streaming and error paths)."""
    count = int(args.get("count", 1))
    interval = float(args.get("interval", 0.0))
    for seq in range(count):
        if seq and interval > 0:
            time.sleep(interval)
        yield {"seq": seq, "payload": args.get("payload")}
    if args.get("fail"):
        raise RuntimeError(str(args["fail"]))
    return {"count": count}


@op("scan")
def scan(args: JSONDict) -> Iterator[JSONDict]:
    """Detect installations in each account: one item per account, in the order given.

    ``args``: ``{"accounts": [{"id", "root", "docroots", "max_depth", "php", "php_binary"},
    ...]}``. An
    account whose scan fails (root missing, unreadable, not a folder, a detector bug) gets
    an item with ``error`` set; the other accounts are still scanned.
    """
    accounts = args.get("accounts") or []
    for account in accounts:
        yield _scan_account(account)
    return {"accounts": len(accounts)}


def _scan_account(account: JSONDict) -> JSONDict:
    """Scan one account; never raises (a failure is reported in the item's ``error``)."""
    result: JSONDict = {
        "account": account.get("id"),
        "installations": [],
        "php": None,
        "php_source": None,
        "problems": [],
        "error": None,
        "traceback": None,
    }
    try:
        from patchd.cms.php import php_hints
        from patchd.cms.search import find_installations
        from patchd.safefs import SafeRoot

        docroots = account.get("docroots") or None
        max_depth = int(account.get("max_depth") or 4)
        with SafeRoot(account["root"]) as root, root.caching_folders():
            for found in find_installations(root, docroots=docroots, max_depth=max_depth):
                if _is_installation(found):
                    result["installations"].append(found.to_json())
                else:
                    result["problems"].append(_problem_json(found))
            binary_version = None
            if not account.get("php") and account.get("php_binary"):
                from patchd.patcher.php import binary_version as read_binary_version

                binary_version = read_binary_version(account["php_binary"], account["root"])
            if account.get("php"):
                # NOTE: the operator's inventory is authoritative; hints are only guesses.
                result["php"], result["php_source"] = str(account["php"]), "inventory"
            elif binary_version:
                result["php"], result["php_source"] = binary_version, "php_binary"
            else:
                result["php"], result["php_source"] = php_hints(root, docroots)
    except Exception as exc:
        result["error"] = _describe(exc)
        if not isinstance(exc, (OSError, PatchdError)):
            result["traceback"] = traceback.format_exc()
    return result


def _is_installation(found: Any) -> bool:
    """Tell an ``Installation`` from a ``ScanProblem`` without importing either class."""
    from patchd.cms import interface

    installation_cls = getattr(interface, "Installation", None)
    if installation_cls is not None:
        return isinstance(found, installation_cls)
    return type(found).__name__ == "Installation"


def _problem_json(problem: Any) -> JSONDict:
    """Serialise a ``ScanProblem`` (its ``to_json`` if it has one, else its fields)."""
    if hasattr(problem, "to_json"):
        return problem.to_json()
    if hasattr(problem, "__dataclass_fields__"):
        import dataclasses

        return dataclasses.asdict(problem)
    return {"message": str(problem)}


def _describe(exc: BaseException) -> str:
    """One line saying what went wrong, for the account's ``error`` field."""
    if isinstance(exc, OSError) and exc.strerror:
        name = exc.filename if exc.filename is not None else ""
        return "{}{}{}".format(exc.strerror, ": " if name else "", name)
    if isinstance(exc, PatchdError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"
