"""Run a fresh scan and the rollout of its targets at once (issue 18, item 2): the scan in
the calling thread, each host's rollout in a thread of its own that starts when the host's
feed has its first target."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from patchd.rollout.feed import TargetFeed


@dataclass(frozen=True)
class Streamed:
    """What a streamed rollout ran: the scan's id and each host's rollout result."""

    scan_id: int
    hosts: dict[str, Any]


def stream(
    hosts: Sequence[str],
    feeds: Mapping[str, TargetFeed[Any]],
    roll_out: Callable[[str], Any],
    scan: Callable[[], int],
    parallel: int,
) -> Streamed:
    """Run ``scan()`` (which fills and closes ``feeds``) while ``roll_out(host)`` runs per
    host (at most ``parallel`` hosts at once).

    When the scan fails (or is interrupted: Ctrl-C), the hosts' queued targets are dropped,
    the batches in flight end, and the exception propagates (the run is resumed later).
    Any exception of ``roll_out`` is a bug: raised once all hosts have ended, naming its host.
    """
    pool = ThreadPoolExecutor(max_workers=max(1, min(parallel, len(hosts))))
    futures = {h: pool.submit(roll_out, h) for h in hosts}
    try:
        scan_id = scan()
    except BaseException:
        for feed in feeds.values():
            feed.abandon()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        for feed in feeds.values():
            feed.close()
    pool.shutdown(wait=True)
    results: dict[str, Any] = {}
    for host, future in futures.items():
        exc = future.exception()
        if exc is not None:
            exc.add_note(f"raised while working on host {host}")
            raise exc
        results[host] = future.result()
    return Streamed(scan_id, results)
