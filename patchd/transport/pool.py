"""Fan work out over hosts: one agent session per host, several hosts at once.

NOTE: failures stay per host (pyinfra's lesson): an unreachable host is recorded as its
:class:`~patchd.errors.TransportError` and the other hosts carry on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from patchd.errors import TransportError
from patchd.transport.interface import AgentSession, Transport

T = TypeVar("T")

DEFAULT_PARALLEL = 8


def run_on_host(transport: Transport, fn: Callable[[AgentSession], T]) -> T | TransportError:
    """Open a session on one host, run ``fn`` with it, close it; a TransportError is returned."""
    try:
        with transport.open() as session:
            return fn(session)
    except TransportError as exc:
        return exc


def run_per_host(
    hosts: Mapping[str, Transport],
    fn: Callable[[AgentSession], T],
    *,
    parallel: int = DEFAULT_PARALLEL,
) -> dict[str, T | TransportError]:
    """Run ``fn`` once per host (at most ``parallel`` at a time); results keyed like ``hosts``.

    A host that cannot be reached, or whose connection drops, gets its TransportError as
    its result. Any other exception from ``fn`` is a bug: it does not stop the other hosts,
    and once all have finished the first one (in ``hosts`` order) is re-raised with a note
    naming its host.
    """
    if not hosts:
        return {}
    with ThreadPoolExecutor(max_workers=max(1, min(parallel, len(hosts)))) as pool:
        futures = {name: pool.submit(run_on_host, t, fn) for name, t in hosts.items()}
    results: dict[str, T | TransportError] = {}
    first_bug: BaseException | None = None
    for name, future in futures.items():
        exc = future.exception()
        if exc is None:
            results[name] = future.result()
        elif first_bug is None:
            exc.add_note(f"raised while working on host {name}")
            first_bug = exc
    if first_bug is not None:
        raise first_bug
    return results
