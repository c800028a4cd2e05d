"""One metrics.db, read-only and live: open, detect the schema, keep summaries up to date.

Rules this module lives by (see READER-RULES.md): the file is opened through a `mode=ro` URI
built from a real path, in autocommit, with a busy timeout; every statement is short (first-load
aggregates run over bounded ranges of experiments or ids, on the experiment_id index) and its
result is copied out in one step of SQLite's own code, so no read lock is held while Python
runs; nothing is ever created or written in the file or beside it (the copies go to the
connection's private in-memory temp schema). All access to one file goes through one
connection, guarded by a lock, so `PRAGMA data_version` means something.
"""

from __future__ import annotations

import math
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, String, and_, case, func, literal, or_, type_coerce
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.pool import StaticPool
from sqlmodel import col, create_engine, select

from velora_tui.data.config import ConfigView, parse_config, planned_from_text
from velora_tui.data.models import REQUIRED_COLUMNS, Episode, Experiment
from velora_tui.data.records import (
    EpisodeRow,
    ExperimentSummary,
    SourceState,
    SourceStatus,
    Update,
)
from velora_tui.data.values import as_float, as_int, clean_text, parse_timestamp
from velora_tui.data.writer_lock import wait_for_commit

SQLITE_HEADER = b"SQLite format 3\x00"
NOT_CREATED = "not created yet; waiting for training to start"
MAX_FLOAT = 1.7976931348623157e308
# Rows (or id span) per aggregate statement on first load: each read lock a few tens of ms.
AGGREGATE_CHUNK = 100_000
# Experiments per statement when counting episodes on first load.
COUNT_GROUP = 20
# New rows fetched per refresh; `Update.more` says when there are more waiting.
BATCH = 20_000
# `PRAGMA data_version` as a SELECT, so that it too is read without holding the lock (below).
DATA_VERSION = "SELECT data_version FROM pragma_data_version"
# Between two reads of `data_version` (which take the read lock, and so find a writer holding
# it), changes are seen in the header's file change counter, read without any lock.
CONFIRM_INTERVAL = 1.0
# New experiment rows are looked for with every read that finds an episode of an experiment not
# seen yet, or no episode at all, and otherwise at most this often (seconds).
EXPERIMENTS_INTERVAL = 1.0
# The identity of a file that was read and then removed: no real (st_dev, st_ino) equals it.
_GONE = (-1, -1)


class SchemaError(Exception):
    """The file is SQLite but not a velora metrics database."""


class NotReady(Exception):
    """The file exists but velora has not created its tables yet."""


@dataclass(frozen=True, slots=True)
class Schema:
    has_entropy: bool


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class FetchingCursor(sqlite3.Cursor):
    """A cursor that reads a SELECT's whole result inside `execute`, without holding the
    file's read lock while Python runs.

    SQLite holds its read lock until a statement has stepped to its end, and Python's sqlite3
    lets go of the GIL at every step. With other threads busy (the UI, the charts) each row then
    waited for the GIL, lock held, and a writer's COMMIT slept in its busy handler (1-5 ms at a
    time: 21-28 times in 1,000 commits with the app on its charts). So a SELECT is first copied,
    in one step of SQLite's own code, into a table of this connection's private in-memory temp
    schema (never the file; nothing on disk), which releases the lock as that step ends; its
    rows are then read from there (5-9 such sleeps in 1,000 commits).
    """

    _rows: list[Any]
    _next: int

    def execute(self, sql: str, parameters: Any = (), /) -> FetchingCursor:
        self._rows, self._next = [], 0
        connection = self.connection
        if isinstance(connection, ReadOnlyConnection) and sql.lstrip()[:6].upper() == "SELECT":
            if connection.commit_probe is not None:
                wait_for_commit(connection.commit_probe)
            names = connection.result_names(sql, parameters)
            table = connection.stage(len(names))
            try:
                super().execute(f"INSERT INTO temp.{table} {sql}", parameters)
                aliases = ", ".join(f"c{i} AS {_quoted(name)}" for i, name in enumerate(names))
                super().execute(f"SELECT {aliases} FROM temp.{table} ORDER BY rowid")
                self._rows = super().fetchall()
            finally:
                connection.execute(f"DELETE FROM temp.{table}")
            return self
        super().execute(sql, parameters)
        self._rows = super().fetchall()
        return self

    def _take(self, count: int) -> list[Any]:
        rows = getattr(self, "_rows", [])
        start = getattr(self, "_next", 0)
        self._next = min(len(rows), start + max(count, 0))
        return rows[start : self._next]

    def fetchone(self) -> Any:
        rows = self._take(1)
        return rows[0] if rows else None

    def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._take(self.arraysize if size is None else size)

    def fetchall(self) -> list[Any]:
        return self._take(len(getattr(self, "_rows", [])))

    def __iter__(self) -> FetchingCursor:
        return self

    def __next__(self) -> Any:
        rows = self._take(1)
        if not rows:
            raise StopIteration
        return rows[0]


class ReadOnlyConnection(sqlite3.Connection):
    """Hands out FetchingCursors (also to `execute`, and to SQLAlchemy), and keeps their
    staging tables: one per result width, in the connection's in-memory temp schema. With a
    `commit_probe` (a file descriptor of the database file), each read first lets a commit in
    progress finish (data/writer_lock.py)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._names: dict[str, tuple[str, ...]] = {}
        self._stages: set[int] = set()
        self.commit_probe: int | None = None

    def cursor(self, factory: Any = None) -> Any:
        return super().cursor(factory or FetchingCursor)

    def execute(self, sql: str, parameters: Any = (), /) -> Any:
        return self.cursor().execute(sql, parameters)  # the C method makes a plain cursor

    def result_names(self, sql: str, parameters: Any) -> tuple[str, ...]:
        """The column names of a SELECT, learnt once per statement text (a LIMIT 0 run of it:
        SQLite stops before reading a row)."""
        cache = self._names
        names = cache.get(sql)
        if names is None:
            cursor = sqlite3.Cursor(self)
            try:
                cursor.execute(f"SELECT * FROM ({sql}) LIMIT 0", parameters)
                names = tuple(str(column[0]) for column in cursor.description)
            finally:
                cursor.close()
            if len(cache) >= 1_000:
                cache.clear()
            cache[sql] = names
        return names

    def stage(self, width: int) -> str:
        """The temp table that takes results of `width` columns (created on first use; its
        columns have no type, so values are stored exactly as read)."""
        table = f"velora_tui_read_{width}"
        if width not in self._stages:
            columns = ", ".join(f"c{i}" for i in range(width))
            sqlite3.Cursor(self).execute(f"CREATE TEMP TABLE IF NOT EXISTS {table} ({columns})")
            self._stages.add(width)
        return table


def connect_readonly(path: Path, busy_timeout: float = 1.0) -> sqlite3.Connection:
    """A read-only, autocommit connection that can never create or change the file."""
    uri = path.resolve().as_uri() + "?mode=ro"
    conn = sqlite3.connect(
        uri,
        uri=True,
        isolation_level=None,
        timeout=busy_timeout,
        check_same_thread=False,
        factory=ReadOnlyConnection,
    )
    # The staging tables live in memory: never a temp file beside the database or in /tmp.
    conn.execute("PRAGMA temp_store = MEMORY")
    return conn


def change_counter(fd: int) -> int | None:
    """The file change counter of a database in a rollback-journal mode (velora's), read from
    its header without a lock; None in WAL mode, where it is not kept, or if unreadable.

    SQLite adds one to it at every commit and reads it itself to know whether its cache is
    stale. Read mid-commit it may be new before the commit is: a read then waits for the
    writer's lock like any other, and sees the commit.
    """
    try:
        header = os.pread(fd, 28, 0)
    except OSError:
        return None
    if len(header) < 28 or header[18] == 2 or header[19] == 2:
        return None
    return int.from_bytes(header[24:28], "big")


def _signature(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_mode)


def select_columns(*columns: Any) -> Any:
    """SQLModel's `select` over any number of columns (its typed overloads stop at four)."""
    return select(*columns)


def finite(column: Any) -> ColumnElement[bool]:
    """True only for finite numbers: text, blobs, NULL and +-inf are all excluded."""
    return column.between(-MAX_FLOAT, MAX_FLOAT)  # type: ignore[no-any-return]


def finite_or_null(column: Any) -> Any:
    return case((finite(column), column), else_=None)


def classify(exc: BaseException, path: Path) -> SourceStatus:
    """The state a database error puts a source in, with a message a user can act on."""
    if isinstance(exc, SchemaError):
        return SourceStatus(path, SourceState.UNREADABLE, str(exc))
    if isinstance(exc, NotReady):
        return SourceStatus(path, SourceState.WAITING, str(exc))
    original = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    if isinstance(original, PermissionError):
        return SourceStatus(path, SourceState.UNREADABLE, "permission denied")
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
        if path.exists() and not os.access(path, os.R_OK):
            return SourceStatus(path, SourceState.UNREADABLE, "permission denied")
        return SourceStatus(path, SourceState.WAITING, NOT_CREATED)
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return SourceStatus(path, SourceState.UNREADABLE, f"damaged database: {original}")
    if "no such table" in text or "no such column" in text:
        return SourceStatus(path, SourceState.UNREADABLE, f"unexpected schema: {original}")
    return SourceStatus(path, SourceState.UNREADABLE, clean_text(str(original)))


class MetricsDatabase:
    """A live, read-only view of one metrics.db file. Thread-safe; never raises on data."""

    def __init__(self, path: Path, busy_timeout: float = 1.0, replay: bool = False) -> None:
        self.path = path
        # When set, a first load (a file that appears, or replaces another) hands out every
        # existing row as new, instead of only summarising them: what `tail -f` needs.
        self.replay = replay
        self.busy_timeout = busy_timeout
        self.status = SourceStatus(path, SourceState.WAITING, NOT_CREATED)
        self.summaries: dict[int, ExperimentSummary] = {}
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._engine: Engine | None = None
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
        self._experiments_read = -math.inf
        self._episode_mark = 0
        self._experiment_mark = 0
        self._loaded = False
        self._failed_stat: tuple[int, ...] | None = None
        # Highest id of the first load, until its non-finite rows have been counted.
        self._summarised_mark: int | None = None
        self._seen_stat: tuple[int, ...] | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
            if self._conn is not None:
                self._conn.close()
            if self._header is not None:
                os.close(self._header)
            self._conn = self._engine = self._schema = None
            self._header = self._seen = None
            self._confirmed = -math.inf

    def _reset(self) -> None:
        self.close()
        self._forget()

    def _forget(self) -> None:
        """Drop every row read so far; the next read is a first load."""
        self.summaries = {}
        self._episode_mark = self._experiment_mark = 0
        self._loaded = False
        self._summarised_mark = None

    def reload(self) -> None:
        """Forget what was read; the next refresh reads the file from scratch."""
        with self._lock:
            self._reset()
            self._identity = None
            self._failed_stat = None

    def _open(self) -> None:
        fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            header = os.pread(fd, len(SQLITE_HEADER), 0)
            if len(header) == 0:
                raise NotReady("file is empty; waiting for training to create the tables")
            if header != SQLITE_HEADER:
                raise SchemaError("not a SQLite database")
            conn = connect_readonly(self.path, self.busy_timeout)
        except BaseException:
            os.close(fd)
            raise
        try:
            self._schema = self._detect_schema(conn)
        except BaseException:
            conn.close()
            os.close(fd)
            raise
        if isinstance(conn, ReadOnlyConnection) and change_counter(fd) is not None:
            conn.commit_probe = fd  # rollback-journal mode: a read can make a COMMIT wait
        self._conn, self._header = conn, fd
        self._engine = create_engine("sqlite://", creator=lambda: conn, poolclass=StaticPool)

    @staticmethod
    def _detect_schema(conn: sqlite3.Connection) -> Schema:
        tables = {
            str(name)
            for (name,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
            ).fetchall()
        }
        if not tables:
            raise NotReady("no tables yet; waiting for training to create them")
        missing_tables = sorted(set(REQUIRED_COLUMNS) - tables)
        if missing_tables:
            raise SchemaError(
                "not a velora metrics database (no table "
                + ", ".join(missing_tables)
                + "; tables: "
                + clean_text(", ".join(sorted(tables)), 80)
                + ")"
            )
        columns: dict[str, set[str]] = {}
        for table in REQUIRED_COLUMNS:
            rows = conn.execute(f"PRAGMA table_info({table})").fetchall()
            columns[table] = {str(row[1]) for row in rows}
            missing = sorted(REQUIRED_COLUMNS[table] - columns[table])
            if missing:
                raise SchemaError(
                    f"not a velora metrics database (table {table} lacks {', '.join(missing)})"
                )
        return Schema(has_entropy="entropy_loss" in columns["episode"])

    # -- refreshing ------------------------------------------------------------------------

    def may_have_changed(self) -> bool:
        """Cheap and non-blocking (for polling): could a refresh find anything new?"""
        try:
            signature: tuple[int, ...] | None = _signature(self.path.stat())
        except OSError:
            signature = None
        if signature != self._seen_stat or self.status.state is SourceState.LOCKED:
            return True
        conn = self._conn
        if conn is None or not self._lock.acquire(blocking=False):
            return conn is not None  # busy reading: let the refresh decide
        try:
            if self._header is not None and self._seen is not None and self._seen[0] == "counter":
                return change_counter(self._header) != self._seen[1]
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
        change counter; `data_version` once a second)."""
        with self._lock:
            update = Update(self.path)
            before = self.status
            try:
                self._refresh(update)
            except (sqlite3.Error, SQLAlchemyError, SchemaError, NotReady, OSError) as exc:
                self._fail(exc)
            update.status_changed = self.status != before
            return update

    def _fail(self, exc: BaseException) -> None:
        self.status = classify(exc, self.path)
        if self.status.state is not SourceState.LOCKED:
            self.close()
            try:
                st = self.path.stat()
            except OSError:
                self._failed_stat = None
            else:
                self._failed_stat = _signature(st)

    def _refresh(self, update: Update) -> None:
        self._seen_stat = None
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self.close()
            # Whatever appears here next is a new file: forget this one's rows then (reset).
            self._identity = _GONE if self._loaded or self.summaries else None
            message = "removed; waiting for a new one" if self.summaries else NOT_CREATED
            self.status = SourceStatus(self.path, SourceState.WAITING, message)
            return
        signature = self._seen_stat = _signature(st)
        if self._conn is None and self._failed_stat == signature:
            return  # Same bytes that failed last time: nothing new to learn.
        identity = (st.st_dev, st.st_ino)
        if self._identity is not None and identity != self._identity:
            update.reset = bool(self.summaries)
            self._reset()
        self._identity = identity
        if self._conn is None:
            self._open()
        conn, header = self._conn, self._header
        assert conn is not None
        assert header is not None
        seen = self._version(conn, header)
        if self._loaded and seen == self._seen and self.status.state is SourceState.OK:
            return
        if not self._loaded:
            self._initial_load(update)
        else:
            self._incremental(update)
        self._seen = seen
        self._failed_stat = None
        self.status = SourceStatus(self.path, SourceState.OK)

    def _version(self, conn: sqlite3.Connection, header: int) -> tuple[str, int]:
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

    def _fetch(self, statement: Any) -> Sequence[Any]:
        """All rows of a SQLModel statement (Core execution: an ORM Session per statement cost
        ~4x more, on every refresh)."""
        assert self._engine is not None
        with self._engine.connect() as conn:
            rows: Sequence[Any] = conn.execute(statement).all()
            return rows

    def _max_episode_id(self) -> int:
        value = self._fetch(select(func.max(Episode.id)))[0][0]
        return int(value or 0)

    def _initial_load(self, update: Update) -> None:
        if self.replay:
            self._loaded = True
            self._incremental(update)
            return
        # Everything up to the mark is summarised now; rows above it are read as new ones.
        mark = self._max_episode_id()
        self._load_experiments(update)
        aggregates = self._count_episodes(mark)
        self._add_rewards(aggregates, mark)
        self._summarised_mark = mark
        update.first_load = True
        edge_ids = [agg[1] for agg in aggregates.values()] + [agg[2] for agg in aggregates.values()]
        edges = {row.id: row for row in self._episodes_by_id(edge_ids)}
        for exp_id, (count, first, last, best, bad) in aggregates.items():
            summary = self._summary_for(exp_id, update)
            first_row, last_row = edges.get(first), edges.get(last)
            summary.episodes = count
            summary.first_id, summary.last_id = first, last
            summary.best_reward = as_float(best)
            summary.nonfinite = int(bad)
            if first_row is not None:
                summary.first_activity = first_row.created_at
            if last_row is not None:
                summary.last_episode_num = last_row.episode_num
                summary.last_reward = last_row.reward
                summary.reward_moving_avg = last_row.reward_moving_avg
                summary.last_activity = last_row.created_at
            update.experiments.add(exp_id)
        self._episode_mark = mark
        self._loaded = True

    def _count_episodes(self, mark: int) -> dict[int, list[Any]]:
        """Each experiment's count and id range, from the experiment_id index alone (it covers
        the query: no table rows are read), a range of experiment ids per statement so no read
        lock lasts long. `id + 0` keeps SQLite on that index rather than a rowid scan."""
        ids = sorted(self.summaries)
        bounds = ids[COUNT_GROUP - 1 :: COUNT_GROUP]
        ranges = list(zip([None, *bounds], [*bounds, None], strict=True))
        aggregates: dict[int, list[Any]] = {}
        for low, high in ranges:
            where = [col(Episode.id) + 0 <= mark]
            if low is not None:
                where.append(col(Episode.experiment_id) > low)
            if high is not None:
                where.append(col(Episode.experiment_id) <= high)
            counts = (
                select_columns(
                    Episode.experiment_id, func.count(), func.min(Episode.id), func.max(Episode.id)
                )
                .where(*where)
                .group_by(Episode.experiment_id)
            )
            for exp_id, count, first, last in self._fetch(counts):
                key = as_int(exp_id)
                if key is not None:
                    aggregates[key] = [count, first, last, None, 0]
        return aggregates

    def _add_rewards(
        self, aggregates: dict[int, list[Any]], mark: int, *, nonfinite: bool = False
    ) -> None:
        """Best reward (or, with `nonfinite`, the rows holding inf/NaN/text in a reward or loss)
        per experiment, in short indexed reads."""
        schema = self._schema
        assert schema is not None
        nonfinite_terms = [
            ~finite(Episode.reward),
            ~finite(Episode.actor_loss),
            ~finite(Episode.critic_loss),
        ]
        if schema.has_entropy:
            entropy = col(Episode.entropy_loss)
            nonfinite_terms.append(and_(entropy.is_not(None), ~finite(entropy)))
        if nonfinite:
            best: Any = literal(None)
            bad: Any = func.sum(case((or_(*nonfinite_terms), 1), else_=0))
        else:
            best, bad = func.max(finite_or_null(Episode.reward)), literal(0)

        def merge(agg: list[Any], chunk_best: Any, chunk_bad: Any) -> None:
            if chunk_best is not None and (agg[3] is None or chunk_best > agg[3]):
                agg[3] = chunk_best
            agg[4] += chunk_bad or 0

        # Small experiments together (one range of experiment ids per ~AGGREGATE_CHUNK rows);
        # `id + 0` keeps SQLite on the experiment_id index instead of a rowid scan.
        group: list[int] = []
        rows = 0
        for exp_id in [*sorted(aggregates), None]:
            agg = aggregates[exp_id] if exp_id is not None else None
            if group and (agg is None or rows + agg[0] > AGGREGATE_CHUNK or len(group) >= 1000):
                statement = (
                    select_columns(Episode.experiment_id, best, bad)
                    .where(
                        col(Episode.experiment_id).between(group[0], group[-1]),
                        col(Episode.id) + 0 <= mark,
                    )
                    .group_by(Episode.experiment_id)
                )
                for found_id, chunk_best, chunk_bad in self._fetch(statement):
                    if found_id in aggregates:
                        merge(aggregates[found_id], chunk_best, chunk_bad)
                group, rows = [], 0
            if agg is None:
                break
            if agg[0] <= AGGREGATE_CHUNK:
                group.append(exp_id)  # type: ignore[arg-type]
                rows += agg[0]
                continue
            low, last = agg[1], agg[2]  # a big experiment: its own reads, by id range
            while low <= last:
                high = min(last, low + AGGREGATE_CHUNK - 1)
                statement = select_columns(best, bad).where(
                    Episode.experiment_id == exp_id,
                    col(Episode.id) >= low,
                    col(Episode.id) <= high,
                )
                merge(agg, *self._fetch(statement)[0])
                low = high + 1

    def count_nonfinite(self) -> set[int]:
        """Add to each summary the rows of its first load with inf, NaN or text in a reward or
        loss (a second pass, left out of the first load: it costs as much as the rest).
        Rows read since are counted as they arrive. Returns the experiments that have some."""
        with self._lock:
            mark = self._summarised_mark
            if not self._guarded() or mark is None:
                return set()
            self._summarised_mark = None
            aggregates = {
                exp_id: [s.episodes, s.first_id, min(s.last_id or 0, mark), None, 0]
                for exp_id, s in self.summaries.items()
                if s.first_id is not None and s.first_id <= mark
            }
            try:
                self._add_rewards(aggregates, mark, nonfinite=True)
            except (sqlite3.Error, SQLAlchemyError) as exc:
                self._fail(exc)
                return set()
            found = set()
            for exp_id, agg in aggregates.items():
                if agg[4]:
                    self.summaries[exp_id].nonfinite += int(agg[4])
                    found.add(exp_id)
            for summary in self.summaries.values():
                summary.nonfinite_known = True
            return found

    def _incremental(self, update: Update) -> None:
        rows = self._new_episodes(self._episode_mark, BATCH)
        if not rows and self._max_episode_id() < self._episode_mark:
            # Rows vanished: the file was rewritten in place. Start over from scratch.
            update.reset = True
            self._forget()
            self._initial_load(update)
            return
        # Experiments after episodes: every episode's experiment row committed before it.
        if (
            not rows
            or time.monotonic() - self._experiments_read >= EXPERIMENTS_INTERVAL
            or any(row.experiment_id not in self.summaries for row in rows)
        ):
            self._load_experiments(update)
        for row in rows:
            self._summary_for(row.experiment_id, update).absorb(row)
            update.experiments.add(row.experiment_id)
        if self._summarised_mark is None:  # every row counted: new runs' counts are complete
            for exp_id in update.experiments:
                self.summaries[exp_id].nonfinite_known = True
        if rows:
            self._episode_mark = rows[-1].id
        update.episodes = rows
        update.more = len(rows) == BATCH

    def _load_experiments(self, update: Update) -> None:
        self._experiments_read = time.monotonic()
        statement = (
            select_columns(
                Experiment.id,
                type_coerce(Experiment.agent, String),
                type_coerce(Experiment.env, String),
                type_coerce(Experiment.config, String),
                type_coerce(Experiment.created_at, String),
            )
            .where(col(Experiment.id) > self._experiment_mark)
            .order_by(col(Experiment.id))
        )
        for exp_id, agent, env, config, created in self._fetch(statement):
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

    # -- episode rows ----------------------------------------------------------------------

    def _episode_columns(self) -> list[Any]:
        schema = self._schema
        assert schema is not None
        entropy = Episode.entropy_loss if schema.has_entropy else literal(None)
        return [
            Episode.id,
            Episode.experiment_id,
            Episode.episode_num,
            Episode.reward,
            Episode.length,
            Episode.reward_moving_avg,
            Episode.reward_moving_std,
            Episode.actor_loss,
            Episode.critic_loss,
            entropy,
            type_coerce(Episode.created_at, String),
        ]

    @staticmethod
    def _row(values: Sequence[Any]) -> EpisodeRow:
        entropy = values[9]
        return EpisodeRow(
            id=int(values[0]),
            experiment_id=as_int(values[1]) or 0,
            episode_num=as_int(values[2]),
            reward=as_float(values[3]),
            length=as_int(values[4]),
            reward_moving_avg=as_float(values[5]),
            reward_moving_std=as_float(values[6]),
            actor_loss=as_float(values[7]),
            critic_loss=as_float(values[8]),
            entropy_loss=None if entropy is None else as_float(entropy),
            created_at=parse_timestamp(values[10]),
        )

    def _episodes_by_id(self, ids: list[int]) -> list[EpisodeRow]:
        rows: list[EpisodeRow] = []
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            statement = select_columns(*self._episode_columns()).where(col(Episode.id).in_(chunk))
            rows.extend(self._row(values) for values in self._fetch(statement))
        return rows

    def _new_episodes(self, after: int, limit: int) -> list[EpisodeRow]:
        statement = (
            select_columns(*self._episode_columns())
            .where(col(Episode.id) > after)
            .order_by(col(Episode.id))
            .limit(limit)
        )
        return [self._row(values) for values in self._fetch(statement)]

    def _guarded(self) -> bool:
        """Open (if needed) for an on-demand query; False when the file cannot be read now."""
        if self._conn is None:
            self.refresh()
        return self._conn is not None

    def latest_episodes(self, exp_id: int | None, limit: int) -> list[EpisodeRow]:
        """The newest `limit` episodes (of one experiment, or of all), oldest first."""
        with self._lock:
            if not self._guarded() or limit <= 0:
                return []
            statement = select_columns(*self._episode_columns())
            if exp_id is not None:
                statement = statement.where(Episode.experiment_id == exp_id)
            statement = statement.where(col(Episode.id) <= self._episode_mark)
            statement = statement.order_by(col(Episode.id).desc()).limit(limit)
            try:
                rows = [self._row(values) for values in self._fetch(statement)]
            except (sqlite3.Error, SQLAlchemyError) as exc:
                self._fail(exc)
                return []
            rows.reverse()
            return rows

    def iter_episodes(self, exp_id: int, chunk: int = 5_000) -> Iterator[list[EpisodeRow]]:
        """All episodes of an experiment in id order, in short chunks (each its own read)."""
        after = 0
        while True:
            with self._lock:
                if not self._guarded():
                    return
                statement = (
                    select_columns(*self._episode_columns())
                    .where(Episode.experiment_id == exp_id, col(Episode.id) > after)
                    .order_by(col(Episode.id))
                    .limit(chunk)
                )
                rows = [self._row(values) for values in self._fetch(statement)]
            if not rows:
                return
            yield rows
            after = rows[-1].id

    def config(self, exp_id: int) -> ConfigView:
        with self._lock:
            if not self._guarded():
                return ConfigView(text="", error=self.status.describe())
            statement = select(type_coerce(Experiment.config, String)).where(
                Experiment.id == exp_id
            )
            try:
                found = self._fetch(statement)
            except (sqlite3.Error, SQLAlchemyError) as exc:
                self._fail(exc)
                return ConfigView(text="", error=self.status.describe())
        if not found:
            return ConfigView(text="", error=f"experiment {exp_id} has no row in {self.path}")
        return parse_config(found[0][0])

    def run_locked(self, query: Any) -> Any:
        """Run `query(fetch, columns)` under this file's lock (for the series module)."""
        with self._lock:
            if not self._guarded():
                return None
            try:
                return query(self._fetch, self._schema)
            except (sqlite3.Error, SQLAlchemyError) as exc:
                self._fail(exc)
                return None
