"""One metrics.db, read-only and live: open it, keep each experiment's summary up to date, and
answer on-demand reads (latest episodes, an export, a config, chart series).

All access to one file goes through one connection (connection.py), guarded by a lock, so
`PRAGMA data_version` means something; and every call that touches the file runs in the file's
lane (deadline_lanes.py), so that a file system that stops answering makes this source "not
responding" instead of stopping its callers. A first load reads only each experiment's first and
last rows; the aggregates that need every row are added up afterwards in short reads
(exact_totals.py), and only rows above a high-water mark are read after that. The reading rules:
docs/reading-rules.md.
"""

from __future__ import annotations

import errno
import math
import os
import sqlite3
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, wait
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from velora_tui.data import deadline_lanes, exact_totals, statements
from velora_tui.data.cleaning import as_float, as_int, clean_text, parse_timestamp
from velora_tui.data.config import ConfigView, parse_config, planned_from_text
from velora_tui.data.connection import (
    DATA_VERSION,
    Prepared,
    ReadOnlyConnection,
    change_counter,
)
from velora_tui.data.deadline_lanes import SETTLE, Lane, NotResponding
from velora_tui.data.exact_totals import Pending, Scan
from velora_tui.data.files import (
    AsksAtOnce,
    FileSystem,
    NotRegular,
    Readable,
    SourceAway,
    is_link_loop,
    not_regular,
    system,
)
from velora_tui.data.open_files import OpenFiles
from velora_tui.data.records import (
    EPISODE_FIELDS,
    RECENT,
    TIME_SEPARATOR,
    EpisodeRow,
    ExperimentSummary,
    SourceState,
    SourceStatus,
    Update,
)
from velora_tui.data.schema import NotReady, Schema, SchemaError, check_header, detect_schema

# An episode as the health rules read it (queries.HEALTH_COLUMNS, made safe as
# EpisodeRow.from_stored makes them): id, episode_num, reward_moving_avg, reward_moving_std,
# critic_loss, actor_loss, entropy_loss (None where the schema has none), created_at, length.
HealthValues = tuple[
    int, int | None, float, float, float, float, float | None, datetime | None, int | None
]
NOT_CREATED = "not created yet; waiting for training to start"
# Before its first read: pending, not a guess at what the file is.
NOT_READ = "not read yet"
# Reasons that pass by themselves: the file is tried again even if it has not changed.
TOO_MANY_FILES = "this process has too many files open; retrying"
NOT_OPENED = "SQLite could not open it; retrying"
_TRANSIENT = (TOO_MANY_FILES, NOT_OPENED)
# A closed database (open_files.py) whose file looks as it did when last read is not opened
# again, unless it was written less than this long ago (seconds): a commit in the same tick of
# the file system's clock as the last read leaves its stat as it was; its header's change
# counter then says.
FRESH = 2.0
LINK_LOOP = "symbolic link loop: the link leads back to itself"
T = TypeVar("T")
# New rows fetched per refresh; `Update.more` says when there are more waiting.
BATCH = 20_000
# Between two reads of `data_version` (which take the read lock, and so find a writer holding
# it), changes are seen in the header's file change counter, read without any lock.
CONFIRM_INTERVAL = 1.0
# Experiment rows, and experiment ids with their first and last episodes and the times of their
# newest RECENT rows, read per statement on a first load: each such read stays short however
# many experiments a file holds (about exact_totals.ROWS_PER_READ rows).
EXPERIMENTS_PER_READ = 1_000
EDGES_PER_READ = exact_totals.ROWS_PER_READ // RECENT
# Reads of a first load's scan asked of a far host at once (each still short there, each of
# other experiments): over a link of 20 ms a round trip, `ls` of 1M episodes waited 250 of them
# one after another (docs/performance.md, Remote hosts).
FAR_READS = 16
# The identity of a file that was read and then removed: no real (st_dev, st_ino) equals it.
_GONE = (-1, -1)
# New rows kept as read, while a chart's reader wants them (keep_new_rows): it folds them into
# its buckets instead of reading them again, a read of its own that met the writer's commits
# (docs/performance.md, The writer beside the app). At most this many rows: a reader further
# behind reads the rest.
KEEP_ROWS = 4_096


@dataclass(frozen=True, slots=True)
class RowBatch:
    """Every episode with an id in (`after`, `last`], in id order, as stored
    (queries.new_episodes' columns)."""

    after: int
    last: int
    rows: Sequence[Sequence[Any]]


class ReadFailed(Exception):
    """An on-demand read could not be done; `status` says why (also the source's state now)."""

    def __init__(self, status: SourceStatus) -> None:
        super().__init__(status.describe())
        self.status = status


def failed(status: SourceStatus) -> NoReturn:
    """A read that must not look complete when the file did not answer: ReadFailed."""
    raise ReadFailed(status)


def _signature(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_mode)


# What a first load knows of an experiment (MetricsDatabase._experiment_edges).
Edges = tuple[Any, int, EpisodeRow, EpisodeRow, list[datetime | None]]


def recent_times(stored: Any) -> list[datetime | None]:
    """experiment_edges' `recent` (times as stored, newest first, joined by TIME_SEPARATOR) as
    times, oldest first; None for a piece that is not one. It relies on SQLite handing a
    subquery's rows to group_concat in the subquery's order (its ORDER BY id DESC LIMIT)."""
    if not isinstance(stored, bytes):
        return []
    pieces = stored.split(TIME_SEPARATOR.encode())
    return [parse_timestamp(piece) for piece in reversed(pieces)]


def estimate_episodes(first: EpisodeRow | None, last: EpisodeRow | None, span: int) -> int:
    """An experiment's episode count from its first and last rows, until the scan knows it:
    velora numbers episodes 1..n, so the numbers tell, where they are plausible (no more rows
    than ids in the experiment's range)."""
    floor = 1 if span <= 1 else 2
    first_num = first.episode_num if first is not None else None
    last_num = last.episode_num if last is not None else None
    if first_num is not None and last_num is not None and floor <= last_num - first_num + 1 <= span:
        return last_num - first_num + 1
    return floor


def not_responding(path: Path, seconds: float) -> SourceStatus:
    return SourceStatus(
        path,
        SourceState.NOT_RESPONDING,
        f"its file system has not answered for {seconds:g} s; read again as soon as it does",
    )


def classify(exc: BaseException, path: Path) -> SourceStatus:
    """The state a database error puts a source in, with a message a user can act on."""
    if isinstance(exc, SchemaError | NotRegular):
        return SourceStatus(path, SourceState.UNREADABLE, str(exc))
    if isinstance(exc, NotReady):
        return SourceStatus(path, SourceState.WAITING, str(exc))
    if isinstance(exc, SourceAway):
        return SourceStatus(path, SourceState.NOT_RESPONDING, clean_text(str(exc)))
    original = exc
    if isinstance(original, OSError) and original.errno in (errno.EMFILE, errno.ENFILE):
        return SourceStatus(path, SourceState.WAITING, TOO_MANY_FILES)
    if isinstance(original, PermissionError):
        return SourceStatus(path, SourceState.UNREADABLE, "permission denied")
    if isinstance(original, OSError) and is_link_loop(original):
        return SourceStatus(path, SourceState.UNREADABLE, LINK_LOOP)
    text = str(original).lower()
    if "locked" in text or "busy" in text:
        return SourceStatus(path, SourceState.LOCKED, "locked by a writer; retrying")
    if "readonly" in text or "read-only" in text or "attempt to write" in text:
        return SourceStatus(
            path,
            SourceState.LOCKED,
            "a writer stopped mid-transaction (hot journal); waiting for the next writer "
            "to recover it",
        )
    if "unable to open" in text:
        return _unopenable(path)
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return SourceStatus(path, SourceState.UNREADABLE, f"damaged database: {original}")
    if "no such table" in text or "no such column" in text:
        return SourceStatus(path, SourceState.UNREADABLE, f"unexpected schema: {original}")
    return SourceStatus(path, SourceState.UNREADABLE, clean_text(str(original)))


def _unopenable(path: Path) -> SourceStatus:
    """Why SQLite could not open a file (it says only "unable to open"); called in the file's
    lane, like every other call on it."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return SourceStatus(path, SourceState.WAITING, NOT_CREATED)
    except OSError as exc:
        return classify(exc, path)
    problem = not_regular(st.st_mode)
    if problem is not None:
        return classify(problem, path)
    if not os.access(path, os.R_OK):
        return SourceStatus(path, SourceState.UNREADABLE, "permission denied")
    # It is there: say why it could not be opened (out of file descriptors, most often).
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        return classify(exc, path)
    os.close(fd)
    return SourceStatus(path, SourceState.WAITING, NOT_OPENED)


def _no_rows(_: SourceStatus) -> list[Sequence[Any]]:
    return []


class MetricsDatabase:
    """A live, read-only view of one metrics.db file. Thread-safe; never raises on data.

    Every call on the file runs in its lane (deadline_lanes.py) and is waited for at most the lane's
    deadline: a file whose file system does not answer is "not responding" (`status`), and its
    reads give up with that state instead of blocking their callers. A refresh that does not
    come back in time is kept, and its rows handed out by the first refresh after it returns.
    """

    def __init__(
        self,
        path: Path,
        busy_timeout: float = 1.0,
        replay: bool = False,
        *,
        files: FileSystem | None = None,
        lane: Lane | None = None,
        open_files: OpenFiles | None = None,
    ) -> None:
        self.path = path
        # When set, a first load (a file that appears, or replaces another) hands out every
        # existing row as new, instead of only summarising them: what `tail -f` needs.
        self.replay = replay
        self.busy_timeout = busy_timeout
        self.files = files if files is not None else system()
        self.lane = (
            lane if lane is not None else Lane(f"velora-tui {path}", deadline_lanes.DEADLINE)
        )
        # The databases open at once, when bounded (a Monitor's): this one is closed when it is
        # the least recently used past the limit, and opened again by its next read.
        self._open_files = open_files
        self._unread = self._status = SourceStatus(path, SourceState.WAITING, NOT_READ)
        # The status last handed out with an update (to flag its changes, not responding
        # included; a file found missing at its first read is no change), and the calls of each
        # kind ("refresh", "scan") that did not come back in time: their results go with the
        # next call of the kind once they do.
        self._reported = SourceStatus(path, SourceState.WAITING, NOT_CREATED)
        self._late: dict[str, Future[Any]] = {}
        self._late_lock = threading.Lock()
        self.summaries: dict[int, ExperimentSummary] = {}
        self._lock = threading.RLock()
        self._conn: Readable | None = None
        self._schema: Schema | None = None
        self._identity: tuple[int, int] | None = None
        # The file, opened beside the connection (and closed only after it: closing any file
        # descriptor of a file drops every POSIX lock this process holds on it) to read the
        # header's change counter.
        self._header: int | None = None
        # What the last read saw: ("counter", n) from the header, or ("version", n) from
        # `data_version` (WAL mode); when `data_version` was last read; when experiments were.
        self._seen: tuple[str, int] | None = None
        self._confirmed = -math.inf
        self._episode_mark = 0
        self._experiment_mark = 0
        self._loaded = False
        self._failed_stat: tuple[int, ...] | None = None
        # The first load's rows still to be added up, and how many of each experiment's.
        self._scan: Scan | None = None
        self._unscanned: dict[int, int] = {}
        self._seen_stat: tuple[int, ...] | None = None
        # Closed to free its descriptors (close_idle): the file's stat, version and schema as
        # last read (the same file, opened again, is not asked its schema again).
        self._parked: tuple[tuple[int, ...], tuple[str, int], Schema] | None = None
        # The newest rows read, for the readers that want them (keep_new_rows).
        self._keepers: weakref.WeakSet[object] = weakref.WeakSet()
        self._kept: tuple[RowBatch, ...] = ()

    def keep_new_rows(self, owner: object) -> None:
        """Keep the newest rows read (at most KEEP_ROWS) while `owner` lives (new_rows)."""
        self._keepers.add(owner)

    def new_rows(self) -> tuple[RowBatch, ...]:
        """The newest batches of rows read, oldest first (none unless keep_new_rows)."""
        return self._kept

    def _keep(self, batch: RowBatch) -> None:
        if not self._keepers or len(batch.rows) > KEEP_ROWS:
            self._kept = ()
            return
        kept = [*self._kept, batch]
        total = sum(len(b.rows) for b in kept)
        while total > KEEP_ROWS:
            total -= len(kept.pop(0).rows)
        self._kept = tuple(kept)

    @property
    def schema(self) -> Schema | None:
        """The file's schema as last read (None before its first load)."""
        return self._schema

    @property
    def far(self) -> bool:
        """Read across a link (a remote host's database): see FileSystem.far."""
        return self.files.far(self.path)

    @property
    def status(self) -> SourceStatus:
        """The source's state: "not responding" while a call on it has been running longer
        than the deadline, else what its last read found."""
        if self.lane.stuck:
            return not_responding(self.path, self.lane.deadline)
        return self._status

    def _answer(self, call: Callable[[], T], silent: Callable[[SourceStatus], T]) -> T:
        """`call` in this file's lane, waited for at most the deadline. A file that has not
        answered by then gives what `silent` makes of its "not responding" state: an empty
        answer, or `failed` (ReadFailed) for the reads that must not look complete."""
        try:
            return self.lane.run(call)
        except NotResponding:
            return silent(not_responding(self.path, self.lane.deadline))

    # -- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        """Close the file (the next refresh opens it again). A file that does not respond is
        left to its call, which ends on its own."""
        self._answer(self._close, lambda _: self.lane.abandon())

    def shutdown(self) -> Future[None] | None:
        """Close the file without waiting for it (None when it does not respond: then
        nothing waits for it any more, and its thread never holds the process)."""
        try:
            return self.lane.submit(self._close)
        except NotResponding:
            self.lane.abandon()
            return None

    def _close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
            if self._header is not None:
                self.files.close(self._header)
            self._conn = self._schema = None
            self._header = self._seen = None
            self._confirmed = -math.inf
            self._parked = None
            if self._open_files is not None:
                self._open_files.closed(self)

    def close_idle(self) -> bool:
        """Close the file if no call is using it (its lock is taken without waiting), keeping
        everything read: for OpenFiles, from the lane of a database being opened. What the
        file looked like when last read is kept, so that a refresh opens it again only when it
        changed (`_still`)."""
        if not self._lock.acquire(blocking=False):
            return False
        try:
            if self._conn is None:
                return False
            seen, stat_seen, schema = self._seen, self._seen_stat, self._schema
            self._close()
            if (
                self._loaded
                and self._status.state is SourceState.OK
                and seen is not None
                and seen[0] == "counter"  # `data_version` (WAL mode) is the connection's own
                and stat_seen is not None
                and schema is not None
            ):
                self._parked = (stat_seen, seen, schema)
                self._seen = seen
            return True
        finally:
            self._lock.release()

    def _still(self, st: os.stat_result, signature: tuple[int, ...]) -> bool:
        """A closed database's file is as it was when last read: the same stat and, while it
        was written less than FRESH seconds ago, the same change counter (read through a file
        descriptor opened for that alone)."""
        parked = self._parked
        if (
            parked is None
            or not self._loaded
            or self._status.state is not SourceState.OK
            or signature != parked[0]
        ):
            return False
        if abs(time.time() - st.st_mtime) >= FRESH:
            return True
        try:
            fd = self.files.open(self.path)
        except (OSError, NotRegular):
            return False
        try:
            counter = change_counter(fd, self.files.read)
        finally:
            self.files.close(fd)
        return counter is not None and ("counter", counter) == parked[1]

    def _connected(self) -> bool:
        """The file open for a read (this file's lock held): opened again if it was closed to
        free its descriptors, unless another file is at its path now (the next refresh reads
        that one, as a new file)."""
        if self._conn is not None:
            if self._open_files is not None:
                self._open_files.used(self)
            return True
        parked = self._parked
        if parked is None:
            return False
        try:
            st = self.files.stat(self.path)
            if (st.st_dev, st.st_ino) != self._identity:
                return False
            self._open(parked[2])
        except (sqlite3.Error, SchemaError, NotReady, OSError, NotRegular):
            return False
        self._seen = parked[1]  # what was read; the next refresh reads what is newer
        return True

    def _reset(self) -> None:
        self._close()
        self._forget()

    def _forget(self) -> None:
        """Drop every row read so far; the next read is a first load."""
        self.summaries = {}
        self._episode_mark = self._experiment_mark = 0
        self._loaded = False
        self._scan = None
        self._unscanned = {}
        self._kept = ()

    def reload(self) -> None:
        """Forget what was read; the next refresh reads the file from scratch (nothing, when
        the file does not respond: its state says so)."""
        with self._late_lock:
            self._late.clear()  # what a late call read is forgotten too
        self._answer(self._reload, lambda _: None)

    def _reload(self) -> None:
        with self._lock:
            self._reset()
            self._identity = None
            self._failed_stat = None

    def _open(self, schema: Schema | None = None) -> None:
        """Open the file; `schema`: the one it had when it was closed to free its descriptors
        (the same file: not asked again)."""
        files = self.files
        fd = files.open(self.path)
        try:
            check_header(fd, files.read)
            conn = files.connect(self.path, self.busy_timeout)
        except BaseException:
            files.close(fd)
            raise
        try:
            self._schema = schema if schema is not None else detect_schema(conn)
        except BaseException:
            conn.close()
            files.close(fd)
            raise
        if isinstance(conn, ReadOnlyConnection) and change_counter(fd, files.read) is not None:
            conn.commit_probe = fd  # rollback-journal mode: a read can make a COMMIT wait
        self._conn, self._header = conn, fd
        self._parked = None
        if self._open_files is not None:
            self._open_files.opened(self)  # may close the least recently used others

    # -- refreshing ------------------------------------------------------------------------

    def may_have_changed(self) -> bool:
        """Cheap and non-blocking on the database (for polling): could a refresh find
        anything new? Its stat and header read block as long as the file system does: call it
        in the lane (Monitor.start_checks)."""
        try:
            st: os.stat_result | None = self.files.stat(self.path)
        except OSError:
            st = None
        signature = None if st is None else _signature(st)
        if signature != self._seen_stat or self._status.state is SourceState.LOCKED:
            return True
        conn = self._conn
        if conn is None and self._parked is not None and st is not None and signature:
            # Closed to free its descriptors: its stat, and its header while fresh.
            if not self._lock.acquire(blocking=False):
                return True
            try:
                return not self._still(st, signature)
            finally:
                self._lock.release()
        if conn is None or not self._lock.acquire(blocking=False):
            return conn is not None  # busy reading: let the refresh decide
        try:
            header, seen = self._header, self._seen
            if header is not None and seen is not None and seen[0] == "counter":
                return change_counter(header, self.files.read) != seen[1]
            # Never wait out the busy timeout here (the caller's event loop would freeze while
            # a writer holds its lock): locked means "maybe", and the refresh, in a thread, waits.
            conn.execute("PRAGMA busy_timeout = 0")
            try:
                version = conn.execute(DATA_VERSION).fetchone()[0]
            finally:
                conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
        except sqlite3.Error:
            return True
        finally:
            self._lock.release()
        return ("version", version) != self._seen

    def refresh(self) -> Update:
        """Read what changed since the last call. Cheap when nothing did (a stat and the header's
        change counter; `data_version` once a second). Waits at most the lane's deadline."""
        started = self.start_refresh()
        if started is not None:
            wait([started], timeout=self.lane.deadline + SETTLE)
        return self.finish_refresh(started)

    def start_refresh(self) -> Future[Update] | None:
        """Start a refresh in the lane without waiting for it (Monitor starts every source's,
        then waits for them together); finish it with `finish_refresh`. A refresh that came
        back late is handed back instead, done; None while one is still out."""
        return self._start("refresh", self._refresh_now)

    def finish_refresh(self, started: Future[Update] | None) -> Update:
        """The update of a started refresh if it is done (else it is kept for later), its
        `status_changed` set when the state shown changed since the last update."""
        update = self._collect("refresh", started)
        if update is None:
            update = Update(self.path)
        shown = self.status
        with self._late_lock:
            if shown is not self._unread and shown != self._reported:
                update.status_changed = True
                self._reported = shown
        return update

    def _start(self, kind: str, call: Callable[[], T]) -> Future[T] | None:
        with self._late_lock:
            late = self._late.get(kind)
            if late is not None:
                if not late.done():
                    return None
                del self._late[kind]
                return late
        try:
            return self.lane.submit(call)
        except NotResponding:
            return None

    def _collect(self, kind: str, started: Future[T] | None) -> T | None:
        if started is None:
            return None
        if not started.done():
            with self._late_lock:
                self._late[kind] = started
            return None
        if started.cancelled() or isinstance(started.exception(), NotResponding):
            return None  # given up on (abandoned): nothing to hand out
        return started.result()

    def _refresh_now(self) -> Update:
        with self._lock:
            update = Update(self.path)
            before = self._reported if self._status is self._unread else self._status
            try:
                self._refresh(update)
            except (sqlite3.Error, SchemaError, NotReady, OSError, NotRegular) as exc:
                self._fail(exc)
            update.status_changed = self._status != before
            return update

    def _fail(self, exc: BaseException) -> None:
        self._status = classify(exc, self.path)
        if self._status.state is not SourceState.LOCKED:
            self._close()
            try:
                st = self.files.stat(self.path)
            except OSError:
                self._failed_stat = None
            else:
                # Tried again as it is: a transient reason, or a host that is away.
                transient = self._status.message in _TRANSIENT or isinstance(exc, SourceAway)
                self._failed_stat = None if transient else _signature(st)

    def _refresh(self, update: Update) -> None:
        self._seen_stat = None
        try:
            st = self.files.stat(self.path)
        except FileNotFoundError:
            self._close()
            # Whatever appears here next is a new file: forget this one's rows then (reset).
            self._identity = _GONE if self._loaded or self.summaries else None
            message = "removed; waiting for a new one" if self.summaries else NOT_CREATED
            self._status = SourceStatus(self.path, SourceState.WAITING, message)
            return
        signature = self._seen_stat = _signature(st)
        if self._conn is None and self._failed_stat == signature:
            return  # Same bytes that failed last time: nothing new to learn.
        problem = not_regular(st.st_mode)
        if problem is not None:
            # Never opened (a FIFO's open waits for a writer). What was read from the file it
            # replaced stays listed; a regular file that takes its place is read as a new one.
            self._close()
            self._identity = _GONE if self._loaded or self.summaries else None
            raise problem
        identity = (st.st_dev, st.st_ino)
        if self._identity is not None and identity != self._identity:
            update.reset = bool(self.summaries)
            self._reset()
        self._identity = identity
        if self._conn is None:
            parked = self._parked
            if self._still(st, signature):
                return  # closed to free its descriptors, and unchanged: stays closed
            self._open(parked[2] if parked is not None else None)
        conn, header = self._conn, self._header
        assert conn is not None
        assert header is not None
        if self._open_files is not None:
            self._open_files.used(self)
        seen = self._version(conn, header)
        if self._loaded and seen == self._seen and self._status.state is SourceState.OK:
            return
        if not self._loaded:
            self._initial_load(update)
        else:
            self._incremental(update)
        self._seen = seen
        self._failed_stat = None
        self._status = SourceStatus(self.path, SourceState.OK)

    def _version(self, conn: Readable, header: int) -> tuple[str, int]:
        """The file's version: its change counter, read without a lock, and at least every
        CONFIRM_INTERVAL `data_version`, which takes the read lock (a writer holding its lock
        then shows as "locked") and is the version in WAL mode."""
        counter = change_counter(header)
        now = time.monotonic()
        if counter is None or now - self._confirmed >= CONFIRM_INTERVAL:
            version = int(conn.execute(DATA_VERSION).fetchone()[0])
            self._confirmed = now
            if counter is None:
                return ("version", version)
        assert counter is not None
        return ("counter", counter)

    def _fetch(self, statement: Prepared, **params: Any) -> Sequence[Any]:
        """Every row of one statement (queries.py), read in one step (connection.py)."""
        assert self._conn is not None
        cursor = self._conn.execute(statement.sql, statement.parameters(params))
        rows: Sequence[Any] = cursor.fetchall()
        return rows

    def _fetch_all(
        self, reads: Sequence[tuple[Prepared, Mapping[str, Any]]]
    ) -> list[Sequence[Any]]:
        """Every row of each statement: asked at once of a host that takes them so, else read
        one after another."""
        conn = self._conn
        assert conn is not None
        if isinstance(conn, AsksAtOnce) and len(reads) > 1:
            return list(conn.execute_all([(s.sql, s.parameters(p)) for s, p in reads]))
        return [self._fetch(statement, **params) for statement, params in reads]

    def _max_episode_id(self) -> int:
        value = self._fetch(statements.max_episode_id())[0][0]
        return int(value or 0)

    def _initial_load(self, update: Update) -> None:
        if self.replay:
            self._loaded = True
            self._incremental(update)
            return
        # Rows up to the mark are summarised from their experiments' first and last rows now,
        # and added up exactly by the scan; rows above it are read as new ones.
        mark = self._max_episode_id()
        self._load_experiments(update)
        found = self._experiment_edges(mark)
        pending: deque[Pending] = deque()
        for key, exp_id, first_row, last_row, times in found:
            first, last = first_row.id, last_row.id
            summary = self._summary_for(exp_id, update)
            estimate = estimate_episodes(first_row, last_row, last - first + 1)
            pending.append(Pending(key, exp_id, first, last, estimate=estimate))
            self._unscanned[exp_id] = self._unscanned.get(exp_id, 0) + 1
            summary.scanned = False
            summary.episodes += estimate
            if summary.first_id is None or first < summary.first_id:
                summary.first_id = first
                summary.first_activity = first_row.created_at
            if summary.last_id is None or last > summary.last_id:
                summary.last_id = last
                summary.last_episode_num = last_row.episode_num
                summary.last_reward = last_row.reward
                summary.reward_moving_avg = last_row.reward_moving_avg
                summary.last_activity = last_row.created_at
                summary.recall(times)
            update.experiments.add(exp_id)
        self._scan = Scan(mark, pending, exact_totals.ROWS_PER_READ) if pending else None
        update.first_load = self._scan is not None
        self._episode_mark = mark
        self._loaded = True

    def _experiment_edges(self, upto: int) -> list[Edges]:
        """(experiment id as stored, as an int, first row, last row, the times of its newest
        RECENT rows oldest first) of every experiment with episodes up to id `upto`,
        EDGES_PER_READ experiments a read."""
        schema = self._schema
        assert schema is not None
        edges = statements.experiment_edges(schema)
        width = len(EPISODE_FIELDS)
        found = []
        after: Any = -math.inf  # below every id SQLite can hold (NULL aside)
        while True:
            page = self._fetch(edges, upto=upto, after=after, count=EDGES_PER_READ, recent=RECENT)
            for row in page:
                first, last = row[1 : 1 + width], row[1 + width : 1 + 2 * width]
                exp_id = as_int(row[0])
                if exp_id is not None and first[0] is not None and last[0] is not None:
                    found.append(
                        (
                            row[0],
                            exp_id,
                            EpisodeRow.from_stored(first),
                            EpisodeRow.from_stored(last),
                            recent_times(row[-1]),
                        )
                    )
            if len(page) < EDGES_PER_READ:
                return found
            after = page[-1][0]

    def _incremental(self, update: Update) -> None:
        after = self._episode_mark
        rows, newest_experiment, found = self._new_episodes(after, BATCH)
        if not rows and self._max_episode_id() < self._episode_mark:
            # Rows vanished: the file was rewritten in place. Start over from scratch.
            update.reset = True
            self._forget()
            self._initial_load(update)
            return
        # Experiments after episodes: every episode's experiment row committed before it.
        if (
            not rows
            or newest_experiment > self._experiment_mark
            or any(row.experiment_id not in self.summaries for row in rows)
        ):
            self._load_experiments(update)
        for row in rows:
            self._summary_for(row.experiment_id, update).absorb(row)
            update.experiments.add(row.experiment_id)
        if rows:
            self._episode_mark = rows[-1].id
            self._keep(RowBatch(after, rows[-1].id, found))
        update.episodes = rows
        update.more = len(rows) == BATCH

    def _load_experiments(self, update: Update) -> None:
        """Experiment rows not read yet, EXPERIMENTS_PER_READ a read."""
        while True:
            page = self._fetch(
                statements.experiments_after(),
                after=self._experiment_mark,
                limit=EXPERIMENTS_PER_READ,
            )
            self._add_experiments(page, update)
            if len(page) < EXPERIMENTS_PER_READ:
                return

    def _add_experiments(self, experiments: Sequence[Any], update: Update) -> None:
        for exp_id, agent, env, config, created in experiments:
            summary = self.summaries.get(exp_id)
            if summary is None:
                summary = self.summaries[exp_id] = ExperimentSummary(
                    self.path, exp_id, "", "", None
                )
            summary.agent = clean_text(agent, 80)
            summary.env = clean_text(env, 80)
            summary.created_at = parse_timestamp(created)
            summary.n_episodes = planned_from_text(config)
            self._experiment_mark = max(self._experiment_mark, exp_id)
            update.experiments.add(exp_id)

    def _summary_for(self, exp_id: int, update: Update) -> ExperimentSummary:
        summary = self.summaries.get(exp_id)
        if summary is None:
            # Episodes whose experiment row does not exist: keep them visible, labelled.
            summary = self.summaries[exp_id] = ExperimentSummary(
                self.path, exp_id, "(no experiment row)", "?", None
            )
            update.experiments.add(exp_id)
        return summary

    # -- the scan of a first load ------------------------------------------------------------

    @property
    def scanning(self) -> bool:
        """Some of the first load's aggregates are not added up yet."""
        return self._scan is not None

    def scan_step(self) -> set[int] | None:
        """One short read of the scan. Returns the experiments whose summaries it made exact,
        or None when there is nothing to add up, or nothing can be read now (the source's
        state says why; the scan goes on from where it was once the file reads again)."""
        return self._answer(self._scan_step, lambda _: None)

    @property
    def may_scan(self) -> bool:
        """A scan step has something to do, or one came back late."""
        return self._scan is not None or "scan" in self._late

    def start_scan(self) -> Future[set[int] | None] | None:
        """Start a scan step without waiting for it, as `start_refresh` does a refresh."""
        if not self.may_scan:
            return None
        return self._start("scan", self._scan_step)

    def finish_scan(self, started: Future[set[int] | None] | None) -> set[int] | None:
        """A started scan step's result if it is done (else it is kept for later)."""
        return self._collect("scan", started)

    def _scan_step(self) -> set[int] | None:
        with self._lock:
            pending = self._scan
            if pending is None or not self._connected() or self._schema is None:
                return None
            try:
                width = FAR_READS if self.far else 1
                finished = pending.steps(self._fetch_all, self._schema, width)
            except sqlite3.Error as exc:
                self._fail(exc)
                return None
            if pending.done:
                self._scan = None
            return self._finish(finished)

    def add_up(self, exp_id: int) -> None:
        """Make one experiment's summary exact now (its part of the scan, in short reads)."""
        self._answer(lambda: self._add_up(exp_id), failed)

    def _add_up(self, exp_id: int) -> None:
        with self._lock:
            pending = self._scan
            if pending is None:
                return
            if not self._connected() or self._schema is None:
                raise ReadFailed(self._status)
            while (item := pending.take(exp_id)) is not None:
                try:
                    exact_totals.add_up(item, self._fetch, self._schema, pending.rows_per_read)
                except sqlite3.Error as exc:
                    pending.queue.appendleft(item)
                    self._fail(exc)
                    raise ReadFailed(self._status) from None
                self._finish([item])
            if pending.done:
                self._scan = None

    def _finish(self, items: list[Pending]) -> set[int]:
        """Put the scan's totals into the summaries; returns those now exact."""
        exact = set()
        for item in items:
            summary = self.summaries.get(item.exp_id)
            if summary is None:
                continue
            total = item.total
            summary.episodes += total.count - item.estimate
            if total.best is not None and not total.best <= summary.best_reward:
                summary.best_reward = total.best
            summary.nonfinite += total.nonfinite
            left = self._unscanned.get(item.exp_id, 1) - 1
            self._unscanned[item.exp_id] = left
            if left <= 0:
                del self._unscanned[item.exp_id]
                summary.scanned = True
                exact.add(item.exp_id)
        return exact

    # -- episode rows ----------------------------------------------------------------------

    def _new_episodes(
        self, after: int, limit: int
    ) -> tuple[list[EpisodeRow], int, Sequence[Sequence[Any]]]:
        """Episodes above id `after`, the newest experiment id (0 when no row came), and the
        rows as stored."""

        assert self._schema is not None
        found = self._fetch(statements.new_episodes(self._schema), after=after, limit=limit)
        newest = as_int(found[-1][-1]) if found else None
        return [EpisodeRow.from_stored(values) for values in found], newest or 0, found

    def latest_episodes(self, exp_id: int | None, limit: int) -> list[EpisodeRow]:
        """The newest `limit` episodes (of one experiment, or of all) read so far, oldest
        first; none when the file cannot be read now (its state says why)."""
        return self._answer(lambda: self._latest_episodes(exp_id, limit), lambda _: [])

    def _latest_episodes(self, exp_id: int | None, limit: int) -> list[EpisodeRow]:
        with self._lock:
            if limit <= 0 or not self._connected() or self._schema is None:
                return []

            statement = statements.latest_episodes(self._schema, one_experiment=exp_id is not None)
            try:
                found = self._fetch(statement, upto=self._episode_mark, limit=limit, exp_id=exp_id)
                rows = [EpisodeRow.from_stored(values) for values in found]
            except sqlite3.Error as exc:
                self._fail(exc)
                return []
            rows.reverse()
            return rows

    def latest_health(self, exp_id: int, limit: int) -> list[HealthValues]:
        """The newest `limit` episodes of an experiment read so far, oldest first, as the
        health rules read them: their columns only, and no EpisodeRow each (a first look at
        100 runs reads 30,000 rows). Empty when the file cannot be read now."""
        return self.latest_health_of([exp_id], limit).get(exp_id, [])

    def latest_health_of(self, exp_ids: Sequence[int], limit: int) -> dict[int, list[HealthValues]]:
        """`latest_health` of several experiments: a far host is asked FAR_READS of them at
        once (one round trip). An experiment whose read failed is left out."""
        found: dict[int, list[HealthValues]] = {}
        width = FAR_READS if self.far else 1
        for start in range(0, len(exp_ids), width):
            chunk = list(exp_ids[start : start + width])
            read = self._answer(partial(self._latest_health, chunk, limit), _no_rows)
            if len(read) < len(chunk):
                break  # the file cannot be read now: the rest would fail as well
            for exp_id, rows in zip(chunk, read, strict=True):
                values = health_values(rows)
                values.reverse()
                found[exp_id] = values
        return found

    def _latest_health(self, exp_ids: list[int], limit: int) -> list[Sequence[Any]]:
        with self._lock:
            if limit <= 0 or not self._connected() or self._schema is None:
                return []
            statement = statements.latest_health(self._schema)
            mark = self._episode_mark
            reads = [(statement, {"upto": mark, "limit": limit, "exp_id": e}) for e in exp_ids]
            try:
                return self._fetch_all(reads)
            except sqlite3.Error as exc:
                self._fail(exc)
                return []

    def sample(self, exp_id: int, points: int) -> list[EpisodeRow]:
        """Up to `points` episodes evenly spread over the experiment (as read so far), oldest
        first: a sparkline's worth, or a first look at a long run, one seek per point."""
        return self._answer(lambda: self._sample(exp_id, points), lambda _: [])

    def _sample(self, exp_id: int, points: int) -> list[EpisodeRow]:
        with self._lock:
            summary = self.summaries.get(exp_id)
            if summary is None or summary.first_id is None:
                return []
            if not self._connected() or self._schema is None:
                return []
            first, last = summary.first_id, min(summary.last_id or 0, self._episode_mark)
            if last < first or points <= 0:
                return []

            statement = statements.sampled(self._schema)
            try:
                found = self._fetch(statement, exp_id=exp_id, first=first, last=last, points=points)
            except sqlite3.Error as exc:
                self._fail(exc)
                return []
        return [EpisodeRow.from_stored(values) for values in found]

    def iter_episodes(self, exp_id: int, chunk: int = 5_000) -> Iterator[list[EpisodeRow]]:
        """All episodes of an experiment in id order, in short chunks (each its own read),
        with their values as stored (StoredEpisode: for an export). Raises ReadFailed when
        the file cannot be read (before or between chunks)."""
        after = 0
        while True:
            rows = self._answer(partial(self._episodes_after, exp_id, after, chunk), failed)
            if not rows:
                return
            yield rows
            after = rows[-1].id

    def _episodes_after(self, exp_id: int, after: int, chunk: int) -> list[EpisodeRow]:
        with self._lock:
            if not self._connected() or self._schema is None:
                raise ReadFailed(self._status)
            from velora_tui.data.records import StoredEpisode

            statement = statements.experiment_episodes(self._schema)
            try:
                found = self._fetch(statement, after=after, limit=chunk, exp_id=exp_id)
                # Kept as stored too: an export writes what the file holds (export.py).
                return [StoredEpisode.read(values) for values in found]
            except sqlite3.Error as exc:
                self._fail(exc)
                raise ReadFailed(self._status) from None

    def config(self, exp_id: int) -> ConfigView:
        return self._answer(
            lambda: self._config(exp_id), lambda silent: ConfigView("", error=silent.describe())
        )

    def _config(self, exp_id: int) -> ConfigView:
        with self._lock:
            if not self._connected() or self._schema is None:
                return ConfigView(text="", error=self._status.describe())

            try:
                found = self._fetch(statements.config_of(), exp_id=exp_id)
            except sqlite3.Error as exc:
                self._fail(exc)
                return ConfigView(text="", error=self._status.describe())
        if not found:
            return ConfigView(text="", error=f"experiment {exp_id} has no row in {self.path}")
        return parse_config(found[0][0])

    def fetch_each(
        self, reads: Sequence[tuple[Prepared, Mapping[str, Any]]]
    ) -> list[Sequence[Any]] | None:
        """Every row of each statement, in short reads: a far host asked FAR_READS of them at
        once (one round trip), a file here one at a time, each in its own turn of the lane.
        None when the file cannot be read now (or does not answer in time)."""
        width = FAR_READS if self.far else 1
        answers: list[Sequence[Any]] = []
        for start in range(0, len(reads), width):
            chunk = reads[start : start + width]
            found = self._answer(partial(self._fetch_each, chunk), lambda _: None)
            if found is None:
                return None
            answers += found
        return answers

    def _fetch_each(
        self, reads: Sequence[tuple[Prepared, Mapping[str, Any]]]
    ) -> list[Sequence[Any]] | None:
        with self._lock:
            if not self._connected() or self._schema is None:
                return None
            try:
                return self._fetch_all(reads)
            except sqlite3.Error as exc:
                self._fail(exc)
                return None

    def run_locked(self, query: Any) -> Any:
        """Run `query(fetch, schema)` under this file's lock (for the series module); None when
        the file cannot be read now (or does not answer in time)."""
        return self._answer(lambda: self._run_locked(query), lambda _: None)

    def _run_locked(self, query: Any) -> Any:
        with self._lock:
            if not self._connected() or self._schema is None:
                return None
            try:
                return query(self._fetch, self._schema)
            except sqlite3.Error as exc:
                self._fail(exc)
                return None


def row_health_values(row: EpisodeRow) -> HealthValues:
    """An episode's values as the health rules read them (HealthValues' order)."""
    return (
        row.id,
        row.episode_num,
        row.reward_moving_avg,
        row.reward_moving_std,
        row.critic_loss,
        row.actor_loss,
        row.entropy_loss,
        row.created_at,
        row.length,
    )


def health_values(found: Sequence[Sequence[Any]]) -> list[HealthValues]:
    """Stored rows (queries.HEALTH_COLUMNS) as HealthValues: each value exactly what
    EpisodeRow.from_stored makes of it (cleaning.py's rules), with the common case (a float
    where a float belongs, an int where an int does) taken without a call."""
    made: list[HealthValues] = []
    add = made.append
    for row_id, num, avg, std, critic, actor, entropy, created, length in found:
        add(
            (
                int(row_id),
                num if type(num) is int else as_int(num),
                avg if type(avg) is float else as_float(avg),
                std if type(std) is float else as_float(std),
                critic if type(critic) is float else as_float(critic),
                actor if type(actor) is float else as_float(actor),
                None
                if entropy is None
                else entropy
                if type(entropy) is float
                else as_float(entropy),
                parse_timestamp(created),
                length if type(length) is int else as_int(length),
            )
        )
    return made
