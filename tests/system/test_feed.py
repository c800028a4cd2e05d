"""ChangeFeed + live_updates against a real writer process."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import statistics
import subprocess
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.support.databases import MakeDb, add_episode, execute
from tests.support.folders import assert_unchanged
from tests.support.processes import Simulator
from velora_tui.data import feed as feed_module
from velora_tui.data.feed import ChangeFeed, Changes, FeedMode, live_updates
from velora_tui.data.monitor import Monitor
from velora_tui.data.records import EpisodeRow, SourceState, Update

TIMEOUT = 30.0


@contextlib.asynccontextmanager
async def updates_of(
    monitor: Monitor, feed: ChangeFeed
) -> AsyncIterator[AsyncIterator[list[Update]]]:
    """live_updates(), stopped and closed (its watcher tasks ended) when the block ends."""
    stream = live_updates(monitor, feed)
    try:
        yield stream
    finally:
        feed.stop()
        close = getattr(stream, "aclose", None)
        if close is not None:
            await close()


def mode(feed: ChangeFeed) -> FeedMode:
    """The feed's mode now (a call, so that type checkers do not narrow it)."""
    return feed.mode


async def collect_ids(
    monitor: Monitor,
    feed: ChangeFeed,
    want: int,
    writer: subprocess.Popen[bytes],
    folder: Path,
    *,
    grace: float = 0.5,
) -> list[tuple[Path, int]]:
    """Every episode the feed hands out until `want` arrived and the writer ended successfully,
    then for `grace` seconds more, during which the folder must not change (only we read)."""
    seen: list[tuple[Path, int]] = []
    async with asyncio.timeout(TIMEOUT), updates_of(monitor, feed) as stream:
        updates = aiter(stream)
        while len(seen) < want:
            for update in await anext(updates):
                seen.extend((update.db, row.id) for row in update.episodes)
        assert await asyncio.to_thread(writer.wait, TIMEOUT) == 0
        with assert_unchanged(folder):
            settle_at = time.monotonic() + grace
            while time.monotonic() < settle_at:  # heartbeats keep this loop turning
                for update in await anext(updates):
                    seen.extend((update.db, row.id) for row in update.episodes)
    return seen


@pytest.mark.parametrize("poll", [False, True], ids=["watch", "poll"])
async def test_every_episode_once_in_order(
    tmp_path: Path, simulator: Simulator, poll: bool
) -> None:
    path = tmp_path / "metrics.db"
    monitor = Monitor([path])
    monitor.start_replaying()
    monitor.refresh()  # not there yet: waiting
    assert [s.state for s in monitor.statuses()] == [SourceState.WAITING]
    feed = ChangeFeed(monitor, poll=poll, heartbeat=0.2)
    assert mode(feed) is (FeedMode.POLLING if poll else FeedMode.WATCHING)
    proc = simulator(path, episodes=200, rate=200)
    try:
        seen = await collect_ids(monitor, feed, 200, proc, tmp_path)
    finally:
        monitor.close()
    assert seen == [(path, i) for i in range(1, 201)]
    summary = monitor.summary((path, 1))
    assert summary is not None
    assert summary.episodes == 200
    assert summary.finished


@pytest.mark.parametrize("poll", [False, True], ids=["watch", "poll"])
async def test_a_stream_of_commits_is_read_at_most_once_a_read_gap(
    tmp_path: Path, simulator: Simulator, poll: bool
) -> None:
    """Each read takes a shared lock the writer's next commit may wait for: however fast it
    commits, reads stay READ_GAP apart (plus heartbeats), and every episode still arrives."""
    path = tmp_path / "metrics.db"
    monitor = Monitor([path])
    monitor.start_replaying()
    feed = ChangeFeed(monitor, poll=poll, heartbeat=0.2)
    proc = simulator(path, episodes=600, rate=300)
    seen: list[int] = []
    reads: list[float] = []
    try:
        async with asyncio.timeout(TIMEOUT), updates_of(monitor, feed) as stream:
            async for updates in stream:
                rows = [row.id for update in updates for row in update.episodes]
                if rows:
                    reads.append(time.monotonic())
                    seen.extend(rows)
                if len(seen) >= 600:
                    break
        assert await asyncio.to_thread(proc.wait, TIMEOUT) == 0
    finally:
        monitor.close()
    assert seen == list(range(1, 601))
    span = reads[-1] - reads[0]
    allowed = span / feed_module.READ_GAP + span / 0.2 + 2
    assert len(reads) <= allowed, (len(reads), span)


async def test_a_stream_of_commits_is_polled_then_watched_again(
    tmp_path: Path, simulator: Simulator
) -> None:
    """Watching, a stream of commits wakes the watcher for each of them: the feed polls while
    the stream lasts, watches again once it has been quiet for BUSY_FOR, and loses nothing."""
    path = tmp_path / "metrics.db"
    monitor = Monitor([path])
    monitor.start_replaying()
    feed = ChangeFeed(monitor, heartbeat=0.2)
    proc = simulator(path, episodes=600, rate=300)
    seen: list[int] = []
    polled_through_it = False
    try:
        async with asyncio.timeout(TIMEOUT), updates_of(monitor, feed) as stream:
            updates = aiter(stream)
            while len(seen) < 600:
                for update in await anext(updates):
                    seen.extend(row.id for row in update.episodes)
                polled_through_it = polled_through_it or feed.streaming
            assert await asyncio.to_thread(proc.wait, TIMEOUT) == 0
            assert polled_through_it
            quiet_since = time.monotonic()
            while feed.streaming:  # heartbeats keep this loop turning
                await anext(updates)
            assert time.monotonic() - quiet_since < feed_module.BUSY_FOR + 1.0
            assert mode(feed) is FeedMode.WATCHING
            add_episode(path, 1, episode_num=601)
            while len(seen) < 601:
                for update in await anext(updates):
                    seen.extend(row.id for row in update.episodes)
    finally:
        monitor.close()
    assert seen == list(range(1, 602))


async def read_times(
    path: Path, simulator: Simulator, episodes: int, rate: float, feed_options: dict[str, Any]
) -> list[float]:
    """When each read that found rows of a simulator's run happened; checks every row came
    once, in order."""
    monitor = Monitor([path])
    monitor.start_replaying()
    feed = ChangeFeed(monitor, heartbeat=5.0, **feed_options)
    proc = simulator(path, episodes=episodes, rate=rate)
    seen: list[int] = []
    reads: list[float] = []
    try:
        async with asyncio.timeout(TIMEOUT), updates_of(monitor, feed) as stream:
            updates = aiter(stream)
            while len(seen) < episodes:
                found = [row.id for update in await anext(updates) for row in update.episodes]
                if found:
                    reads.append(time.monotonic())
                    seen.extend(found)
            assert await asyncio.to_thread(proc.wait, TIMEOUT) == 0
    finally:
        monitor.close()
    assert seen == list(range(1, episodes + 1))
    return reads


@pytest.mark.parametrize("poll", [False, True], ids=["watching", "polling"])
async def test_a_fast_stream_is_read_at_the_stream_interval(
    tmp_path: Path, simulator: Simulator, poll: bool
) -> None:
    """A reader that shows rows 10 times a second (the app) asks for reads no more often while
    each read finds several rows, and still gets every row once, in order."""
    options = {"poll": poll, "stream_interval": 0.1}
    reads = await read_times(tmp_path / "metrics.db", simulator, 900, 300, options)
    # Once the stream is recognised, reads are ~0.1 s apart: the 3 s of commits are read ~30
    # times rather than ~75 (every 40 ms).
    settled = [b - a for a, b in itertools.pairwise(reads[feed_module.STREAM_READS + 2 :])]
    assert settled
    assert statistics.median(settled) >= 0.09, settled
    # Fewer reads than reading every READ_GAP would make over the time the rows took to come
    # (~75 for 3 s). That time is measured, not assumed: on a saturated machine the simulator
    # itself falls behind (one CI run took ~7 s for the 900 rows, and made 90 reads).
    span = reads[-1] - reads[0]
    assert len(reads) < span / feed_module.READ_GAP, (len(reads), span)


async def test_a_slow_stream_is_read_as_it_comes(tmp_path: Path, simulator: Simulator) -> None:
    """At 20 commits/s each poll finds a row or none: reads stay POLL_INTERVAL apart."""
    options = {"poll": True, "stream_interval": 0.5}
    reads = await read_times(tmp_path / "metrics.db", simulator, 40, 20, options)
    assert len(reads) >= 20  # at 0.5 s apart it would be ~4


async def test_two_runs_at_once_into_a_directory_created_later(
    tmp_path: Path, simulator: Simulator
) -> None:
    root = tmp_path / "runs"
    root.mkdir()
    path = root / "job-1" / "metrics.db"
    monitor = Monitor([root])
    monitor.start_replaying()
    assert monitor.databases == {}
    feed = ChangeFeed(monitor, heartbeat=0.2)
    proc = simulator(path, episodes=60, rate=300, experiments=2, extra=["--parallel"])
    try:
        seen = await collect_ids(monitor, feed, 120, proc, tmp_path)
    finally:
        monitor.close()
    assert seen == [(path, i) for i in range(1, 121)]
    assert {s.id: s.episodes for s in monitor.summaries()} == {1: 60, 2: 60}


async def test_parent_directory_created_later(tmp_path: Path, simulator: Simulator) -> None:
    path = tmp_path / "not-yet" / "metrics.db"
    monitor = Monitor([path])
    monitor.start_replaying()
    feed = ChangeFeed(monitor, heartbeat=0.2)
    proc = simulator(path, episodes=30, rate=0)
    try:
        seen = await collect_ids(monitor, feed, 30, proc, tmp_path)
    finally:
        monitor.close()
    assert seen == [(path, i) for i in range(1, 31)]


@pytest.mark.parametrize("poll", [False, True], ids=["watch", "poll"])
async def test_heartbeats_when_idle(sample_db: Path, poll: bool) -> None:
    with assert_unchanged(sample_db.parent):
        monitor = Monitor([sample_db])
        feed = ChangeFeed(monitor, poll=poll, heartbeat=0.15)
        yields: list[list[Update]] = []
        stamps: list[float] = []
        start = time.monotonic()
        async with (
            asyncio.timeout(10),
            updates_of(monitor, feed) as stream,
        ):
            async for updates in stream:
                yields.append(updates)
                stamps.append(time.monotonic())
                if len(yields) >= 4:
                    break
        feed.stop()
        monitor.close()
    # The first heartbeat reads the file; the rest find nothing new and still arrive.
    assert [u.db for u in yields[0]] == [sample_db]
    assert all(updates == [] for updates in yields[1:])
    assert stamps[-1] - start < 5
    # Heartbeats keep their pace (the first yield may be the file's change, not a beat).
    gaps = [b - a for a, b in itertools.pairwise(stamps[1:])]
    assert all(gap >= 0.1 for gap in gaps), gaps


async def test_new_rows_reach_the_feed(sample_db: Path) -> None:
    monitor = Monitor([sample_db])
    monitor.refresh()
    feed = ChangeFeed(monitor, heartbeat=0.2)
    received: list[int] = []

    async def write_later() -> None:
        await asyncio.sleep(0.3)
        for num in (121, 122, 123):
            await asyncio.to_thread(add_episode, sample_db, 1, episode_num=num, reward=num)
            await asyncio.sleep(0.05)

    writer = asyncio.create_task(write_later())
    try:
        async with (
            asyncio.timeout(TIMEOUT),
            updates_of(monitor, feed) as stream,
        ):
            async for updates in stream:
                received.extend(row.id for u in updates for row in u.episodes)
                if len(received) >= 3:
                    break
    finally:
        feed.stop()
        await writer
        monitor.close()
    assert received == [221, 222, 223]


async def test_watch_failure_falls_back_to_polling(
    sample_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def watch_limit_reached(*args: Any, **kwargs: Any) -> None:
        raise OSError("OS file watch limit reached")  # what watchfiles raises at the limit

    monkeypatch.setattr(feed_module, "RustNotify", watch_limit_reached)
    monitor = Monitor([sample_db])
    monitor.refresh()
    feed = ChangeFeed(monitor, heartbeat=0.2)
    received: list[int] = []
    written = False
    try:
        async with (
            asyncio.timeout(TIMEOUT),
            updates_of(monitor, feed) as stream,
        ):
            async for updates in stream:
                received.extend(row.id for u in updates for row in u.episodes)
                if mode(feed) is FeedMode.POLLING and not written:
                    written = True
                    await asyncio.to_thread(add_episode, sample_db, 2, episode_num=41)
                if received:
                    break
    finally:
        feed.stop()
        monitor.close()
    assert received == [221]
    assert mode(feed) is FeedMode.POLLING
    assert "file watching failed" in feed.describe()
    assert "watch limit" in feed.describe()


class DeafWatcher:
    """A file watcher that is made and runs but never reports a change: a network file
    system's, where the writer is on another machine."""

    def __init__(self, *args: Any) -> None:
        pass

    def __enter__(self) -> DeafWatcher:
        return self

    def __exit__(self, *args: Any) -> None:
        pass

    def watch(self, debounce_ms: int, step_ms: int, timeout_ms: int, stop: Any) -> str:
        deadline = time.monotonic() + timeout_ms / 1000
        while time.monotonic() < deadline and not stop.is_set():
            time.sleep(0.01)
        return "timeout"


async def test_events_that_never_come_switch_to_polling(
    sample_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where file events truly do not arrive, heartbeats keep finding rows nobody announced:
    the feed says so and polls, and every row arrives once, in order."""
    monkeypatch.setattr(feed_module, "RustNotify", DeafWatcher)
    monitor = Monitor([sample_db])
    monitor.refresh()
    feed = ChangeFeed(monitor, heartbeat=0.2)
    received: list[int] = []
    written: list[int] = []

    async def write() -> None:
        while mode(feed) is FeedMode.WATCHING or len(written) < 5:
            written.append(await asyncio.to_thread(add_episode, sample_db, 1))
            await asyncio.sleep(0.05)
        for _ in range(3):  # and a few more once it polls
            written.append(await asyncio.to_thread(add_episode, sample_db, 1))

    writer = asyncio.create_task(write())
    try:
        async with asyncio.timeout(TIMEOUT), updates_of(monitor, feed) as stream:
            async for updates in stream:
                received.extend(row.id for u in updates for row in u.episodes)
                if writer.done() and len(received) >= len(written):
                    break
    finally:
        feed.stop()
        await writer
        monitor.close()
    assert mode(feed) is FeedMode.POLLING
    assert "file events are missing changes" in feed.describe()
    assert received == written


def _row(row_id: int) -> EpisodeRow:
    return EpisodeRow(
        id=row_id,
        experiment_id=1,
        episode_num=row_id,
        reward=1.0,
        length=1,
        reward_moving_avg=1.0,
        reward_moving_std=0.0,
        actor_loss=0.0,
        critic_loss=0.0,
        entropy_loss=None,
        created_at=datetime.now(),
    )


def test_unannounced_changes_switch_to_polling(sample_db: Path) -> None:
    """Rows a heartbeat finds that no event announces, even by the next heartbeat, are missed;
    two heartbeats in a row with a miss switch to polling."""
    monitor = Monitor([sample_db])
    feed = ChangeFeed(monitor)
    assert feed.describe() == "watching"
    beat = Changes(frozenset(), heartbeat=True)
    silent = [Update(sample_db, episodes=[_row(1)])]
    feed.note(beat, silent)
    assert mode(feed) is FeedMode.WATCHING  # its event may still be on its way
    feed.note(beat, [])
    assert mode(feed) is FeedMode.WATCHING  # it did not come: one miss
    feed.note(beat, [])
    assert mode(feed) is FeedMode.WATCHING  # nothing new to judge by: no sign either way
    feed.note(beat, silent)
    assert mode(feed) is FeedMode.WATCHING
    feed.note(beat, [])
    assert mode(feed) is FeedMode.POLLING  # no event again: a second miss
    assert "missing changes" in feed.describe()
    monitor.close()


def test_late_events_do_not_switch_to_polling(sample_db: Path, tmp_path: Path) -> None:
    """A busy process (a heartbeat reading many databases, or starved of CPU) gets its events
    after the heartbeat that read their rows: every heartbeat then finds rows of some database
    that no event announced yet, but each one's event comes. That is no reason to poll (the
    feed used to switch after two such heartbeats)."""
    monitor = Monitor([sample_db])
    feed = ChangeFeed(monitor)
    beat = Changes(frozenset(), heartbeat=True)
    dbs = [tmp_path / f"run-{n}" / "metrics.db" for n in range(6)]
    for db in dbs:
        feed.note(beat, [Update(db, episodes=[_row(1)])])  # read before its event came
        feed.announce([db])  # which comes after the heartbeat's read
        assert mode(feed) is FeedMode.WATCHING, db
    monitor.close()


def test_poll_mode_says_why(sample_db: Path) -> None:
    monitor = Monitor([sample_db])
    feed = ChangeFeed(monitor, poll=True)
    assert mode(feed) is FeedMode.POLLING
    assert "--poll" in feed.describe()
    monitor.close()


async def test_inf_in_a_file_that_appears_while_watching_is_counted(
    tmp_path: Path, make_db: MakeDb
) -> None:
    """A database that appears after the start is summarised like a first read, with a scan
    pending (`first_load`); adding it up counts its rows holding inf/NaN too, not only later
    ones."""
    path = tmp_path / "run" / "metrics.db"
    path.parent.mkdir()
    monitor = Monitor([path])
    monitor.refresh()
    feed = ChangeFeed(monitor, poll=True, heartbeat=0.2)
    built = make_db(tmp_path / "built.db", [6])
    execute(built, "UPDATE episode SET reward = 9e999 WHERE id <= 2")
    async with asyncio.timeout(TIMEOUT), updates_of(monitor, feed) as stream:
        os.replace(built, path)
        async for updates in stream:
            summary = monitor.summary((path, 1))
            if summary is not None:
                assert any(u.first_load for u in updates)
                break
    assert summary is not None
    assert not summary.scanned
    assert monitor.scanning()
    assert monitor.scan_all() == []
    monitor.close()
    assert summary.scanned
    assert summary.episodes == 6
    assert summary.nonfinite == 2
