"""The Monitor: several sources at once (metrics.db files, and directories holding any number
of them, found by discovery.py), each database's reads and the experiments they found.

One source never stops another: every call on a source (its stat, the walk of a directory, a
database's reads) runs in that source's lane (deadline_lanes.py), the Monitor starts them and
waits for each at most a deadline from when it started running. A source whose call has not
come back is "not responding" and skipped until it does; then what it read is handed out as
usual. Many databases (a sweep of 1,000 runs) are read BATCH at a time, and at most
open_files.OPEN_DATABASES of them are open at once (the least recently used others closed,
keeping what they read).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

from velora_tui.data import deadline_lanes
from velora_tui.data.database import MetricsDatabase
from velora_tui.data.deadline_lanes import SETTLE, Lane, NotResponding, answer
from velora_tui.data.discovery import (
    DB_NAME,
    Walk,
    database_for,
    directory_inode,
    finish_root_inodes,
    is_directory,
    walk_tree,
)
from velora_tui.data.files import FileSystem, system
from velora_tui.data.open_files import OpenFiles
from velora_tui.data.records import (
    ExperimentSummary,
    RunStatus,
    SourceState,
    SourceStatus,
    Update,
)

_EPOCH = datetime(1970, 1, 1)
# Databases whose refresh (or scan step) is started at once by `refresh` (and `scan`): the
# first screen of a few comes as soon as they are read, that of many grows with their number.
BATCH = 64
# A directory source's tree is walked again (by the live feed's heartbeat: `discover_due`) no
# sooner than WALK_GAP_FACTOR times its last walk's duration after that walk ended, and no
# sooner than MIN_WALK_GAP: walks take at most 1/WALK_GAP_FACTOR of the time, whatever the
# tree's size (on a cluster's shared file system, a walk is a load on a server others use).
# Between walks a new database comes from the file events (feed.py: Monitor.owns); the walk is
# what finds one where events do not come (polling) or came before a new directory was watched.
# Figures: docs/performance.md, "Idle".
WALK_GAP_FACTOR = 500
MIN_WALK_GAP = 1.0


# A database and its refresh under way (None: it was not started, see start_refresh).
Started = tuple[MetricsDatabase, "Future[Update] | None"]


@dataclass(frozen=True, slots=True)
class WatchRoot:
    path: Path
    recursive: bool


class Monitor:
    """Every source the user named, each with its own reader: one never stops another."""

    def __init__(
        self,
        sources: Sequence[Path | str],
        busy_timeout: float = 1.0,
        *,
        files: FileSystem | None = None,
        deadline: float | None = None,
        patience: float | None = None,
    ) -> None:
        """`patience`: how long to wait here for each source's kind (file or directory) and the
        walks of the directories (default: up to the deadline). What has not answered by then
        is known by the first `discover` that sees it answer; until then a source is taken for
        a database (its state says "not responding" once the deadline has passed)."""
        self.busy_timeout = busy_timeout
        self.files = files if files is not None else system()
        self.deadline = deadline if deadline is not None else deadline_lanes.DEADLINE
        self.replay = False
        self.closed = False
        self.specs = [Path(os.path.abspath(os.path.expanduser(str(s)))) for s in sources]
        self.directories: list[Path] = []
        self.databases: dict[Path, MetricsDatabase] = {}
        self.open_files = OpenFiles()
        # Lanes of the directories: (what for, path) -> lane.
        self._lanes: dict[tuple[str, Path], Lane] = {}
        self._walks: dict[Path, Walk] = {}
        # Directories whose listing has not come back (with the walk that waits for it):
        # walks leave them out until it does.
        self._stuck: dict[Path, Walk] = {}
        # Sources whose stat has not come back: read as databases until it says otherwise.
        self._undecided: dict[Path, Future[bool]] = {}
        own = {spec: self._new_lane(spec) for spec in dict.fromkeys(self.specs)}
        kinds = {
            spec: lane.submit(partial(is_directory, self.files, spec)) for spec, lane in own.items()
        }
        self._wait(kinds.values(), patience)
        for spec, kind in kinds.items():
            if answer(kind, False) and spec.name != DB_NAME:
                self.directories.append(spec)
                self._lanes[("walk", spec)] = own[spec]
                continue
            if not kind.done():
                self._undecided[spec] = kind
            self._add(spec, own[spec])
        self.discover(patience)

    def _new_lane(self, path: Path) -> Lane:
        return Lane(f"velora-tui {path}", self.deadline)

    def _lane(self, purpose: str, path: Path) -> Lane:
        lane = self._lanes.get((purpose, path))
        if lane is None:
            lane = self._lanes[(purpose, path)] = self._new_lane(path)
        return lane

    def _add(self, path: Path, lane: Lane | None = None) -> bool:
        if path in self.databases:
            return False
        lane = lane or self._new_lane(path)
        self.databases[path] = MetricsDatabase(
            path,
            self.busy_timeout,
            self.replay,
            files=self.files,
            lane=lane,
            open_files=self.open_files,
        )
        return True

    def _settle(self, calls: Sequence[tuple[Lane, Future[Any] | None]]) -> bool:
        """Until every call is done or its lane is stuck (a call of it has been running for
        the deadline): a call still queued behind others is waited for, so many sources are
        read whole, however long that takes, and one that does not answer costs a deadline.
        Gives up when none came back for a deadline. Returns whether any did."""
        pending = [(lane, future) for lane, future in calls if future is not None]
        total = len(pending)
        last_progress = time.monotonic()
        while True:
            left = [(lane, future) for lane, future in pending if not future.done()]
            now = time.monotonic()
            if len(left) < len(pending):
                last_progress = now
            pending = [(lane, future) for lane, future in left if not lane.stuck]
            if not pending or now - last_progress >= self.deadline + SETTLE:
                return len(left) < total
            running = [lane.stuck_at() for lane, _ in pending if lane.running]
            wake = min([last_progress + self.deadline, *running]) + SETTLE
            wait([future for _, future in pending], timeout=max(0.01, wake - now))

    def _wait(self, futures: Iterable[Future[Any]], timeout: float | None = None) -> None:
        """Until every call is done, or `timeout` (the deadline) has passed."""
        pending = [future for future in futures if not future.done()]
        if pending:
            wait(pending, timeout=self.deadline + SETTLE if timeout is None else timeout)

    def start_replaying(self) -> None:
        """From now on, files that appear or are replaced hand out all their rows as new."""
        self.replay = True
        for database in self.databases.values():
            database.replay = True

    # -- discovery -------------------------------------------------------------------------

    def discover(self, wait_for: float | None = None) -> list[Path]:
        """Look for metrics.db files that appeared below the directory sources. A directory
        whose listing does not come back within the deadline is left out until it does, and the
        rest of its tree walked without it; a walk that takes longer than `wait_for` (twice
        the deadline) goes on, and what it finds is added by the next call."""
        if self.closed:
            return []
        end = time.monotonic() + (2 * self.deadline if wait_for is None else wait_for)
        self._decide(end)
        walks = [self._walk(root) for root in self.directories]
        while True:
            now = time.monotonic()
            for index, walk in enumerate(walks):
                if not walk.ended.is_set() and walk.stuck(now, self.deadline):
                    walks[index] = self._walk_around(walk)
                    end = max(end, now + self.deadline)  # for the rest of its tree
            running = [walk for walk in walks if not walk.ended.is_set()]
            if not running or now >= end:
                break
            # Wake when a walk ends, or when the listing under way would count as stuck.
            wake = min([end, *(walk.since + self.deadline for walk in running if walk.current)])
            futures = [walk.future for walk in running if walk.future is not None]
            wait(futures, timeout=max(0.01, wake - now), return_when=FIRST_COMPLETED)
        for walk in walks:
            walk.harvested = walk.ended.is_set()
        return [path for walk in walks for path in list(walk.found) if self._add(path)]

    def discover_due(self) -> list[Path]:
        """`discover` for the live feed's heartbeat, which never waits here: adds what the walks
        that ended since found, and starts a walk of each directory source whose last walk
        ended long enough ago (WALK_GAP_FACTOR); a walk stuck on a directory goes around it."""
        if self.closed:
            return []
        now = time.monotonic()
        self._decide(now)
        added: list[Path] = []
        for root in list(self.directories):
            walk = self._walks.get(root)
            if walk is not None and not walk.ended.is_set():
                if walk.stuck(now, self.deadline):
                    self._walk_around(walk)
                continue
            if walk is not None and not walk.harvested:
                walk.harvested = True
                added += [path for path in list(walk.found) if self._add(path)]
            if walk is None or self._walk_due(root, walk, now):
                self._walk(root)
        return added

    def _walk_due(self, root: Path, walk: Walk, now: float) -> bool:
        """Whether `root`'s tree may be walked again: its last walk ended long enough ago, or a
        directory that did not answer below it has answered since (its part is walked then)."""
        if now - walk.finished >= max(MIN_WALK_GAP, WALK_GAP_FACTOR * walk.duration):
            return True
        return any(
            waiting.ended.is_set()
            for directory, waiting in list(self._stuck.items())
            if directory == root or root in directory.parents
        )

    @property
    def unsettled(self) -> bool:
        """Some source's kind, or some walk of a directory, was not known when last asked."""
        return bool(self._undecided) or any(
            not walk.ended.is_set() for walk in list(self._walks.values())
        )

    def _walk(self, root: Path) -> Walk:
        """The walk of `root` under way, or a new one."""
        walk = self._walks.get(root)
        if walk is not None and not walk.ended.is_set():
            return walk
        for directory, waiting in list(self._stuck.items()):
            if waiting.ended.is_set():
                del self._stuck[directory]  # it answered: walked again
        skip = frozenset(d for d in self._stuck if d == root or root in d.parents)
        walk = self._walks[root] = Walk(root, skip)
        try:
            walk.future = self._lane("walk", root).submit(partial(walk_tree, walk, self.files))
        except NotResponding:
            walk.ended.set()
        return walk

    def _walk_around(self, walk: Walk) -> Walk:
        """A walk stuck listing a directory: leave that directory to it, and walk the rest of
        the tree anew in a fresh lane."""
        if walk.current is not None:
            self._stuck[walk.current] = walk
        walk.stop = True
        del self._walks[walk.root]
        self._lanes.pop(("walk", walk.root)).abandon()
        return self._walk(walk.root)

    def _decide(self, end: float) -> None:
        """A source whose stat had not come back in time was taken for a database; once it
        answers, a directory becomes a directory source. Waits for those stats until `end`,
        unless they count as stuck."""
        asked = [
            kind
            for spec, kind in self._undecided.items()
            if spec in self.databases and not self.databases[spec].lane.stuck
        ]
        self._wait(asked, max(0.0, end - time.monotonic()))
        for spec, kind in list(self._undecided.items()):
            if not kind.done():
                continue
            del self._undecided[spec]
            if answer(kind, False) and spec.name != DB_NAME:
                database = self.databases.pop(spec)
                self._lanes[("walk", spec)] = database.lane
                self.directories.append(spec)

    def owns(self, path: Path) -> Path | None:
        """The database a changed path belongs to, adding it when it is new in a directory."""
        db = database_for(path)
        if db in self.databases:
            return db
        if db.name == DB_NAME and any(root in db.parents for root in self.directories):
            self._add(db)
            return db
        return None

    def watch_roots(self) -> list[WatchRoot]:
        roots = {WatchRoot(d, True) for d in self.directories}
        for db in self.databases:
            if not any(root in db.parents for root in self.directories):
                roots.add(WatchRoot(db.parent, False))
        return sorted(roots, key=lambda r: (str(r.path), r.recursive))

    def root_inodes(self, roots: Sequence[WatchRoot]) -> list[int]:
        """Each root's inode (-1: not a directory now; UNKNOWN_INODE: its stat has not come
        back within the deadline), each asked in the root's lane."""
        asked = self.start_root_inodes(roots)
        self._wait(future for future in asked if future is not None)
        return finish_root_inodes(asked)

    def start_root_inodes(self, roots: Sequence[WatchRoot]) -> list[Future[int] | None]:
        """`root_inodes` without waiting (for the change feed, which awaits them)."""
        asked: list[Future[int] | None] = []
        for root in roots:
            try:
                lane = self._lane("root", root.path)
                asked.append(lane.submit(partial(directory_inode, self.files, root.path)))
            except NotResponding:
                asked.append(None)
        return asked

    # -- reading ---------------------------------------------------------------------------

    def refresh(self, paths: Iterable[Path] | None = None) -> list[Update]:
        """Refresh the given databases (all when None), each in its own lane, BATCH at a time,
        waiting for each at most the deadline from when it starts; only non-empty updates
        come back. A database whose refresh is still out is skipped (its state says "not
        responding" once it has been out for the deadline) until it comes back: its update
        comes with the next call then. When a whole batch does not answer, the rest are left
        for the next call (their state: "not read yet" until then)."""
        targets = list(self.databases) if paths is None else list(paths)
        updates: list[Update] = []
        for start in range(0, len(targets), BATCH):
            started = self.start_refresh(targets[start : start + BATCH])
            answered = self._settle([(db.lane, future) for db, future in started])
            updates.extend(self.finish_refresh(started))
            if not answered and any(future is not None for _, future in started):
                break
        return updates

    def start_refresh(self, paths: Iterable[Path] | None = None) -> list[Started]:
        """The first half of `refresh`: every refresh started, none waited for (the change
        feed awaits them on its event loop, which never blocks)."""
        if self.closed:
            return []
        targets = list(self.databases) if paths is None else list(paths)
        return [
            (database, database.start_refresh())
            for path in targets
            if (database := self.databases.get(path)) is not None
        ]

    def finish_refresh(self, started: list[Started]) -> list[Update]:
        """The second half of `refresh`: the updates of the refreshes that are done."""
        updates = []
        for database, future in started:
            update = database.finish_refresh(future)
            if update:
                updates.append(update)
        return updates

    def start_checks(self) -> dict[Path, Future[bool] | bool]:
        """Whether each database may have changed (for polling), asked in its lane; a source
        that does not respond is left out (the heartbeat's refresh looks at it), one that is
        busy counts as changed (the refresh decides)."""
        checks: dict[Path, Future[bool] | bool] = {}
        for path, database in list(self.databases.items()):
            lane = database.lane
            if lane.stuck:
                continue
            if not lane.idle:
                checks[path] = True
                continue
            try:
                checks[path] = lane.submit(database.may_have_changed)
            except NotResponding:
                continue
        return checks

    def reload(self) -> list[Update]:
        """Forget everything read so far and read every database again."""
        for database in self.databases.values():
            database.reload()
        updates = self.refresh()
        for update in updates:
            update.reset = True
        return updates

    def scanning(self) -> bool:
        """Some database's first load is still being added up (MetricsDatabase.scan_step)."""
        return any(database.scanning for database in self.databases.values())

    def scan(self) -> Iterator[list[Update]]:
        """Add up the first loads' rows, one short read of each database at a time (each in
        its lane, BATCH databases at a time, each waited for at most the deadline from when it
        starts); after each batch, the experiments whose summaries became exact. Ends when
        nothing is left that can be read now."""
        while not self.closed:
            progressed = False
            databases = [(p, db) for p, db in list(self.databases.items()) if db.may_scan]
            for start in range(0, len(databases), BATCH):
                if self.closed:
                    return
                started = [
                    (path, database, database.start_scan())
                    for path, database in databases[start : start + BATCH]
                ]
                self._settle([(database.lane, future) for _, database, future in started])
                updates = []
                stepped = False
                for path, database, future in started:
                    exact = database.finish_scan(future)
                    if exact is None:
                        continue
                    stepped = True
                    if exact:
                        updates.append(Update(path, experiments=exact))
                if stepped:
                    progressed = True
                    yield updates
            if not progressed:
                return

    def scan_all(self) -> list[Path]:
        """Add up everything now; returns the databases that could not be added up."""
        for _ in self.scan():
            pass
        return [path for path, database in self.databases.items() if database.scanning]

    # -- what the user sees ----------------------------------------------------------------

    def statuses(self) -> list[SourceStatus]:
        stuck = [
            SourceStatus(
                directory,
                SourceState.NOT_RESPONDING,
                f"listing this directory has not come back for {self.deadline:g} s; the rest"
                " is read, and it is looked at again as soon as it answers",
            )
            for directory, walk in list(self._stuck.items())
            if not walk.ended.is_set()
        ]
        stuck_paths = {status.path for status in stuck}
        waiting = [
            SourceStatus(d, SourceState.WAITING, "no metrics.db found below it yet")
            for d in self.directories
            if d not in stuck_paths and not any(d in db.parents for db in self.databases)
        ]
        return [db.status for db in list(self.databases.values())] + stuck + waiting

    def summaries(self) -> list[ExperimentSummary]:
        return [s for db in list(self.databases.values()) for s in db.summaries.values()]

    def summary(self, key: tuple[Path, int]) -> ExperimentSummary | None:
        database = self.databases.get(key[0])
        return database.summaries.get(key[1]) if database else None

    def find(self, exp_id: int) -> list[ExperimentSummary]:
        return [db.summaries[exp_id] for db in self.databases.values() if exp_id in db.summaries]

    def close(self, wait_for: float = 1.0) -> None:
        """Close every file, waiting at most `wait_for` seconds, and never for a source that
        does not respond: whatever still waits for one is told so, and its thread (a daemon)
        never holds the process."""
        self.closed = True
        closing = [
            future
            for database in list(self.databases.values())
            if (future := database.shutdown()) is not None
        ]
        for lane in list(self._lanes.values()):
            lane.abandon()
        self._wait(closing, wait_for)
        for database in list(self.databases.values()):
            database.lane.abandon()


def sort_summaries(
    summaries: Iterable[ExperimentSummary], now: datetime
) -> list[ExperimentSummary]:
    """Running experiments first (newest run first, so runs training side by side keep their
    places), then the others by most recent activity."""

    def key(s: ExperimentSummary) -> tuple[int, float, str, int]:
        running = s.status(now) is RunStatus.RUNNING
        moment = (s.created_at or s.last_activity) if running else (s.last_activity or s.created_at)
        return (
            0 if running else 1,
            -((moment - _EPOCH).total_seconds() if moment else 0.0),
            str(s.db),
            -s.id,
        )

    return sorted(summaries, key=key)
