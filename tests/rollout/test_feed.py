"""TargetFeed: what a host's rollout sessions take while a scan feeds them."""

from __future__ import annotations

import threading

from patchd.rollout.feed import TargetFeed


def test_take_waits_for_the_scan_and_ends_when_closed() -> None:
    feed: TargetFeed[int] = TargetFeed()
    got: list[list[int]] = []

    def session() -> None:
        while chunk := feed.take(2, 3, lambda n: n % 2 == 0):
            got.append(chunk)

    thread = threading.Thread(target=session)
    thread.start()
    feed.put([1, 2, 4, 6])
    feed.put([8])
    feed.close()
    thread.join(10)
    assert not thread.is_alive()
    assert [n for chunk in got for n in chunk] == [1, 2, 4, 6, 8]
    assert all(sum(n % 2 == 0 for n in chunk) <= 2 and len(chunk) <= 3 for chunk in got)
    assert feed.everything == [1, 2, 4, 6, 8]


def test_a_closed_feed_takes_nothing_and_abandon_drops_the_queue() -> None:
    feed = TargetFeed([1, 2, 3])
    feed.abandon()
    assert feed.take(5, 5, lambda n: True) == []
    assert not feed.wait_any()
    feed.put([4])
    assert feed.take(5, 5, lambda n: True) == []
    assert feed.everything == [1, 2, 3]


def test_a_full_closed_feed_is_the_stored_scan_case() -> None:
    feed = TargetFeed([2, 3, 4], closed=True)
    assert feed.wait_any()
    assert feed.take(1, 5, lambda n: n % 2 == 0) == [2]
    assert feed.take(1, 5, lambda n: n % 2 == 0) == [3, 4]
    assert feed.take(1, 5, lambda n: n % 2 == 0) == []
