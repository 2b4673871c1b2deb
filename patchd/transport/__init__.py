"""Transports: how the controller reaches the agent on each host.

:func:`transport_for` turns an inventory host into a :class:`Transport`;
:func:`~patchd.transport.pool.run_per_host` fans work out over many hosts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from patchd.errors import InventoryError
from patchd.transport.interface import AgentSession, OpResult, RemoteOpError, Transport
from patchd.transport.local import LocalTransport

if TYPE_CHECKING:
    from patchd.transport.ssh import SSHTransport


def __getattr__(name: str) -> Any:
    # NOTE: paramiko takes ~50 ms to import; a fleet of local hosts never needs it.
    if name == "SSHTransport":
        from patchd.transport.ssh import SSHTransport

        return SSHTransport
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AgentSession",
    "HostSettings",
    "LocalTransport",
    "OpResult",
    "RemoteOpError",
    "SSHTransport",
    "Transport",
    "transport_for",
]


class HostSettings(Protocol):
    """What :func:`transport_for` reads from a host (``patchd.inventory.Host`` has it)."""

    transport: str
    hostname: str | None
    port: int | None
    user: str | None
    key_file: Any
    known_hosts: Any
    python: str | None


def transport_for(name: str, host: HostSettings) -> Transport:
    """The transport for the inventory host ``name`` described by ``host``.

    ``transport`` is ``"local"`` (the agent runs as a subprocess with the controller's own
    Python) or ``"ssh"`` (``hostname`` defaults to ``name``, ``port`` to 22, ``user`` to
    root, ``python`` to ``python3``).
    """
    kind = getattr(host, "transport", None)
    if kind == "local":
        return LocalTransport(name)
    if kind == "ssh":
        from patchd.transport.ssh import SSHTransport

        return SSHTransport(
            name,
            hostname=getattr(host, "hostname", None) or name,
            port=getattr(host, "port", None) or 22,
            user=getattr(host, "user", None) or "root",
            key_file=getattr(host, "key_file", None),
            known_hosts=getattr(host, "known_hosts", None),
            python=getattr(host, "python", None) or "python3",
        )
    raise InventoryError(f"unknown transport {kind!r} (use local or ssh)", where=f"host {name}")
