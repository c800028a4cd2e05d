"""A lane's calls run one at a time in the order they came, except those made `urgent` (what
the user looks at), which go before the queued ones, after the call under way."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from functools import partial

from velora_tui.data.deadline_lanes import Lane, Pool, urgent


def occupied(lane: Lane, release: threading.Event, done: Callable[[], None]) -> Future[None]:
    """A call under way in `lane` until `release` (then `done`): the others queue behind it."""
    started = threading.Event()

    def blocking() -> None:
        started.set()
        release.wait(10)
        done()

    under_way = lane.submit(blocking)
    assert started.wait(10)
    return under_way


def test_an_urgent_call_goes_before_the_queued_ones() -> None:
    lane = Lane("test", deadline=30.0, pool=Pool(size=1))
    release = threading.Event()
    order: list[str] = []

    def call(name: str) -> None:
        order.append(name)

    under_way = occupied(lane, release, partial(call, "under way"))
    queued = [lane.submit(partial(call, n)) for n in ("first", "second")]
    with urgent():
        pressing: Future[None] = lane.submit(lambda: call("urgent"))
    after = lane.submit(lambda: call("after"))  # out of the block: in turn again
    release.set()
    for future in (under_way, *queued, pressing, after):
        future.result(10)
    assert order == ["under way", "urgent", "first", "second", "after"]


def test_urgent_is_this_thread_s_alone() -> None:
    lane = Lane("test", deadline=30.0, pool=Pool(size=1))
    release = threading.Event()
    order: list[str] = []
    under_way = occupied(lane, release, lambda: None)
    with urgent():
        other = threading.Thread(target=lambda: lane.submit(lambda: order.append("other")))
        other.start()
        other.join()
        mine = lane.submit(lambda: order.append("mine"))
    release.set()
    under_way.result(10)
    mine.result(10)
    lane.run(lambda: None)
    assert order == ["mine", "other"]
