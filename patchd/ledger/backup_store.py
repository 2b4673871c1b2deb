"""Where a ledger's rollouts keep their backups when nothing else is configured (issue 17).

The store is tied to the ledger, so two working folders (two ledgers, each numbering its
runs from 1) never write into the same store:

- a ``local`` host: ``<ledger folder>/backups`` (next to the ledger, e.g.
  ``.patchd/backups``), unless that lies inside an account's root on the host;
- an ``ssh`` host (and a local one whose accounts hold the ledger):
  ``/var/lib/patchd/backups/<ledger id>``, the ledger's random id from migration
  ``0009_first_run``.

``--backup-dir`` and a host's ``backup_dir`` in the inventory still win.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from patchd.inventory import Account, Host, Inventory
from patchd.ledger.db import Ledger

#: The parent of the per-ledger stores on hosts where the ledger is not.
HOST_STORES = "/var/lib/patchd/backups"


def ledger_id(ledger: Ledger) -> str:
    """The ledger's random id (hex), made when the ledger was created or upgraded."""
    row = ledger.query_one("SELECT value FROM ledger_info WHERE key = 'id'")
    if row is None:  # NOTE: cannot happen after 0009_first_run; be explicit if it does
        raise RuntimeError(f"ledger {ledger.path} has no id")
    return str(row["value"])


def _inside(path: str, roots: Iterable[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def default_backup_dir(ledger: Ledger, name: str, host: Host, accounts: Iterable[Account]) -> str:
    """The store of host ``name`` when neither ``--backup-dir`` nor ``backup_dir`` is set."""
    if host.transport == "local":
        local = os.path.join(os.path.dirname(os.path.abspath(ledger.path)), "backups")
        roots = (os.path.abspath(a.root) for a in accounts if a.host == name)
        if not _inside(local, roots):
            return local
    return f"{HOST_STORES}/{ledger_id(ledger)}"


def backup_dirs(ledger: Ledger, inventory: Inventory, given: str | None) -> dict[str, str]:
    """The backup store of every host: ``given`` (``--backup-dir``), else the host's
    ``backup_dir``, else :func:`default_backup_dir`."""
    out: dict[str, str] = {}
    for name, host in inventory.hosts.items():
        configured = given or host.backup_dir
        out[name] = configured or default_backup_dir(ledger, name, host, inventory.accounts)
    return out


def describe_stores(stores: dict[str, str], hosts: Iterable[str]) -> str:
    """``stores`` of ``hosts`` in one line, hosts sharing a folder grouped
    (``/x on web01, web02``; more than three hosts are counted)."""
    by_folder: dict[str, list[str]] = {}
    for host in sorted(hosts):
        by_folder.setdefault(stores[host], []).append(host)
    parts = []
    for folder, names in by_folder.items():
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        parts.append(f"{folder} on {shown}")
    return "; ".join(parts)


__all__ = ["HOST_STORES", "backup_dirs", "default_backup_dir", "describe_stores", "ledger_id"]
