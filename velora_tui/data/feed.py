"""The change feed: an async iterator of "these databases may have changed".

It watches the parent directories (watching a file goes silent when the file is replaced) with
watchfiles, and yields a heartbeat at least every second. Whoever consumes it confirms each
change with `PRAGMA data_version` (MetricsDatabase.refresh). Where inotify sees nothing (NFS,
some container mounts) or cannot be used (watch limit reached), it polls every 40 ms instead:
by request (`--poll`), on a watcher error, or when heartbeats keep finding changes that no file
event announced, even later (a busy or starved process gets its events late: a heartbeat may read
a commit whose event is still on its way, which is no sign that events are missing).

Nothing here waits on a source on the event loop: polls and the roots' stats run in the sources'
lanes (deadline_lanes.py) and are awaited with the deadline; a file watcher is made in a lane of
its own (adding a watch looks the path up, and a recursive one walks the tree below it, which
blocks on a dead mount). A source that does not answer is left out until it does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import Any

from watchfiles._rust_notify import RustNotify

from velora_tui.data.deadline_lanes import SETTLE, Lane, answer
from velora_tui.data.discovery import finish_root_inodes
from velora_tui.data.monitor import Monitor, WatchRoot
from velora_tui.data.records import Update

HEARTBEAT = 1.0
POLL_INTERVAL = 0.04
POLL_FILES = 10
# Why these values, and what they were measured to cost: docs/reading-rules.md, "Noticing
# changes". watchfiles' watcher is looked at every `step` ms (each look wakes a thread): often
# while files change, less often once they have been quiet for BUSY_FOR seconds.
BUSY_STEP_MS = 10
IDLE_STEP_MS = 25
BUSY_FOR = 2.0
DEBOUNCE_MS = 50
# Each read takes a shared lock the writer's next commit may have to wait for, so a stream of
# commits is read at most once per READ_GAP (a commit after a quiet spell is read at once).
READ_GAP = POLL_INTERVAL
# A stream of commits wakes the watcher's thread for every one of its file events, CPU the
# writer then lacks: after STREAM_READS reads each within STREAM_GAP of the last, the feed polls
# instead, and watches again once BUSY_FOR seconds pass without a change.
STREAM_READS = 10
STREAM_GAP = 2 * READ_GAP
# A reader that shows new rows only so often (the app) reads a fast stream at that pace: while
# each read finds at least STREAM_ROWS rows, polls are `stream_interval` apart.
STREAM_ROWS = 4


class FeedMode(StrEnum):
    WATCHING = "watching"
    POLLING = "polling"


@dataclass(frozen=True, slots=True)
class Changes:
    paths: frozenset[Path]
    heartbeat: bool = False


class ChangeFeed:
    def __init__(
        self,
        monitor: Monitor,
        *,
        poll: bool = False,
        heartbeat: float = HEARTBEAT,
        poll_interval: float = POLL_INTERVAL,
        stream_interval: float = POLL_INTERVAL,
    ) -> None:
        self.monitor = monitor
        self.heartbeat = heartbeat
        self.poll_interval = poll_interval
        self.stream_interval = stream_interval  # see STREAM_ROWS
        self._rows_read = 0  # by the last read
        self.mode = FeedMode.POLLING if poll else FeedMode.WATCHING
        self.reason = "polling as asked (--poll)" if poll else ""
        self._stopped = asyncio.Event()
        self._announced: set[Path] = set()  # since the last heartbeat's read
        self._suspects: set[Path] = set()  # changed at the last heartbeat, unannounced then
        self._misses = 0
        self.streaming = False  # watching, but polling while a stream of commits lasts

    def stop(self) -> None:
        self._stopped.set()

    def describe(self) -> str:
        return self.reason or str(self.mode)

    def announce(self, paths: Iterable[Path]) -> None:
        """Databases a file event (or a poll) said may have changed."""
        self._announced.update(paths)

    def note(self, changes: Changes, updates: list[Update]) -> None:
        """After each read. After a heartbeat's: switch to polling if changes keep arriving
        that no event announces. A database whose new rows a heartbeat found unannounced is a
        suspect; it counts as missed only if no event for it came by the next heartbeat (its
        event may still have been on its way: queued while the heartbeat read, or late on a
        starved machine). Two heartbeats in a row that each find a miss switch; an event
        that comes for a suspect shows events arrive, and starts the count anew."""
        self._rows_read = sum(len(u.episodes) for u in updates)
        if self.mode is not FeedMode.WATCHING or not changes.heartbeat:
            return
        missed = self._suspects - self._announced
        if missed:
            self._misses += 1
        elif self._suspects:
            self._misses = 0
        self._suspects = {u.db for u in updates if u.episodes and u.db not in self._announced}
        self._announced.clear()
        if self._misses >= 2:
            self._switch_to_polling("file events are missing changes (network filesystem?)")

    def _switch_to_polling(self, why: str) -> None:
        self.mode = FeedMode.POLLING
        self.reason = f"polling: {why}"

    async def __aiter__(self) -> AsyncIterator[Changes]:
        while not self._stopped.is_set():
            polling = self.mode is FeedMode.POLLING or self.streaming
            source = self._poll() if polling else self._watch()
            try:
                async for changes in source:
                    yield changes
            except (OSError, RuntimeError) as exc:
                self._switch_to_polling(f"file watching failed ({exc})")

    async def _poll(self) -> AsyncIterator[Changes]:
        """Poll while asked to, or (when watching) until the stream of commits ends."""
        last_beat = last_change = time.monotonic()
        while not self._stopped.is_set() and (self.mode is FeedMode.POLLING or self.streaming):
            # Checks are cheap but not free (docs/performance.md, Polling): beyond 10 files, poll
            # less often rather than more per second.
            count = len(self.monitor.databases)
            fast = self._rows_read >= STREAM_ROWS
            interval = self.stream_interval if fast else self.poll_interval
            await asyncio.sleep(interval * max(1.0, count / POLL_FILES))
            now = time.monotonic()
            beat = now - last_beat >= self.heartbeat
            if beat:
                last_beat = now
            changed = await self._changed()
            self.announce(changed)
            if changed:
                last_change = now
            elif self.streaming and now - last_change >= BUSY_FOR:
                self.streaming = False  # back to watching
            if changed or beat:
                yield Changes(changed, beat)

    async def _changed(self) -> frozenset[Path]:
        """The databases that may have changed, each asked in its lane (Monitor.start_checks),
        waited for at most the deadline."""
        checks = self.monitor.start_checks()
        await settled(self.monitor, [c for c in checks.values() if isinstance(c, Future)])
        return frozenset(
            path
            for path, check in checks.items()
            if check is True or (isinstance(check, Future) and answer(check, False))
        )

    async def _signature(self, roots: list[WatchRoot]) -> tuple[tuple[str, bool, int], ...]:
        """Which roots exist, and as which inode (a removed and re-made directory counts as
        new), asked in their lanes, awaited here."""
        asked = self.monitor.start_root_inodes(roots)
        await settled(self.monitor, [future for future in asked if future is not None])
        inodes = finish_root_inodes(asked)
        return tuple(
            (str(root.path), root.recursive, inode)
            for root, inode in zip(roots, inodes, strict=True)
        )

    async def _watch(self) -> AsyncIterator[Changes]:
        """Watch the current roots; return (to be restarted) when the roots change."""
        roots = self.monitor.watch_roots()
        signature = await self._signature(roots)
        queue: asyncio.Queue[set[tuple[int, str]] | BaseException] = asyncio.Queue()
        stop = asyncio.Event()
        # A root that is not a directory now, or did not answer, is not watched (the heartbeat
        # reads its databases, and a change of its inode restarts the watch).
        groups = [
            [
                root.path
                for root, (_, _, inode) in zip(roots, signature, strict=True)
                if root.recursive == recursive and inode >= 0
            ]
            for recursive in (True, False)
        ]
        watched = [pair for pair in zip(groups, (True, False), strict=True) if pair[0]]
        ready = [asyncio.Event() for _ in watched]
        tasks = [
            asyncio.create_task(_pump(self.monitor, paths, recursive, queue, stop, made))
            for (paths, recursive), made in zip(watched, ready, strict=True)
        ]
        last_beat, last_read = time.monotonic(), 0.0
        in_stream = 0  # reads in a row, each within STREAM_GAP of the one before
        try:
            # What changed while nothing watched (after polling through a stream), checked once
            # the watchers exist (or failed to be made: then the queue says so).
            await asyncio.gather(*(made.wait() for made in ready))
            # Events for what was written before these watchers existed never come (a root
            # removed and made again): the count of changes events missed starts anew.
            self._suspects.clear()
            self._misses = 0
            missed = await self._changed()
            if missed:
                self.announce(missed)
                last_read = time.monotonic()
                yield Changes(missed)
            while not self._stopped.is_set() and self.mode is FeedMode.WATCHING:
                timeout = max(0.0, last_beat + self.heartbeat - time.monotonic())
                batch: set[tuple[int, str]] | BaseException | None
                try:
                    batch = await asyncio.wait_for(queue.get(), timeout)
                except TimeoutError:
                    batch = None
                if isinstance(batch, BaseException):
                    raise batch
                if batch is not None:
                    wait = last_read + READ_GAP - time.monotonic()
                    if wait > 0:
                        await asyncio.sleep(wait)  # gather what else arrives meanwhile
                paths: set[Path] = set()
                while batch is not None:
                    for _change, raw in batch:
                        owner = self.monitor.owns(Path(raw))
                        if owner is not None:
                            paths.add(owner)
                    batch = None if queue.empty() else queue.get_nowait()
                    if isinstance(batch, BaseException):
                        raise batch
                self.announce(paths)
                beat = time.monotonic() - last_beat >= self.heartbeat
                if beat:
                    last_beat = time.monotonic()
                if paths or beat:
                    now = time.monotonic()
                    if paths:
                        in_stream = in_stream + 1 if now - last_read <= STREAM_GAP else 1
                    last_read = now
                    yield Changes(frozenset(paths), beat)
                if in_stream >= STREAM_READS:
                    self.streaming = True
                    return
                if beat and await self._signature(self.monitor.watch_roots()) != signature:
                    return
        finally:
            stop.set()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


async def settled(monitor: Monitor, calls: Sequence[Future[Any]]) -> None:
    """Until the lanes' calls are done, at most the deadline (and a little), without blocking
    the event loop; a call that is not done by then is left to its lane."""
    pending = [asyncio.wrap_future(call) for call in calls if not call.done()]
    if not pending:
        return
    _, late = await asyncio.wait(pending, timeout=monitor.deadline + SETTLE)
    for waiting in late:
        waiting.cancel()  # its answer, when it comes, is for no one
    for waiting in pending:
        if waiting.done() and not waiting.cancelled():
            waiting.exception()  # looked at: asyncio logs exceptions never looked at


async def _make_watcher(monitor: Monitor, paths: list[Path], recursive: bool) -> RustNotify:
    """The watcher of `paths`, made in a lane of its own and waited for at most the deadline
    (OSError then: the feed falls back to polling, and says why)."""
    lane = Lane("velora-tui file watcher", monitor.deadline)

    def make() -> RustNotify:
        return RustNotify([str(p) for p in paths], False, False, 0, recursive, False)

    made = asyncio.wrap_future(lane.submit(partial(monitor.files.watch, paths, make)))
    try:
        return await asyncio.wait_for(made, monitor.deadline)
    except TimeoutError:
        lane.abandon()
        raise OSError(f"no answer within {monitor.deadline:g} s while setting it up") from None


async def _pump(
    monitor: Monitor,
    paths: list[Path],
    recursive: bool,
    queue: asyncio.Queue[set[tuple[int, str]] | BaseException],
    stop: asyncio.Event,
    ready: asyncio.Event,
) -> None:
    try:
        try:
            watcher = await _make_watcher(monitor, paths, recursive)
        finally:
            ready.set()
        with watcher as notify:
            last_change = time.monotonic()
            while not stop.is_set():
                busy = time.monotonic() - last_change < BUSY_FOR
                step = BUSY_STEP_MS if busy else IDLE_STEP_MS
                # The call returns within a second ("timeout") so a new step takes effect.
                batch = await asyncio.to_thread(notify.watch, DEBOUNCE_MS, step, 1_000, stop)
                if isinstance(batch, set):
                    last_change = time.monotonic()
                    queue.put_nowait(batch)
    except asyncio.CancelledError:
        raise
    except BaseException as exc:  # handed to the consumer, which falls back to polling
        queue.put_nowait(exc)


async def refreshed(monitor: Monitor, targets: list[Path] | None) -> list[Update]:
    """Monitor.refresh, awaited: each database read in its lane, none on the event loop."""
    started = monitor.start_refresh(targets)
    await settled(monitor, [future for _, future in started if future is not None])
    return monitor.finish_refresh(started)


async def live_updates(monitor: Monitor, feed: ChangeFeed) -> AsyncIterator[list[Update]]:
    """Confirmed changes, read in the sources' lanes: a list of non-empty updates per change."""
    async for changes in feed:
        if changes.heartbeat:
            if monitor.directories or monitor.unsettled:
                await asyncio.to_thread(monitor.discover_due)
            targets: list[Path] | None = None
        else:
            targets = sorted(changes.paths)
        updates = await refreshed(monitor, targets)
        feed.note(changes, updates)
        pending = [u.db for u in updates if u.more]
        while pending:
            more = await refreshed(monitor, pending)
            updates.extend(more)
            pending = [u.db for u in more if u.more]
        if updates or changes.heartbeat:
            yield updates
