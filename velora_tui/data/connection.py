"""The read-only connection to a metrics.db: opened so that it can never create or change the
file, and reading every result without holding SQLite's read lock while Python runs.

The reading rules these follow, and the measurements behind them: docs/reading-rules.md.
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from velora_tui.data.writer_lock import wait_for_commit, wait_for_readers_turn


@dataclass(frozen=True, slots=True)
class Prepared:
    """A statement compiled to SQLite's SQL (queries.py): its text, with named parameters, and
    the values of the constant ones (the statement's literals); the others are given per run."""

    sql: str
    constants: Mapping[str, Any]

    def parameters(self, given: Mapping[str, Any]) -> dict[str, Any]:
        return {**self.constants, **given}


T = TypeVar("T")

# Runs a prepared statement with its named parameters and returns every row.
Fetch = Callable[..., Sequence[Any]]
# Runs several (statement, parameters), in order, and returns each one's rows.
FetchAll = Callable[[Sequence[tuple[Prepared, Mapping[str, Any]]]], Sequence[Sequence[Any]]]
# `PRAGMA data_version` as a SELECT, so that it too is read without holding the lock.
DATA_VERSION = "SELECT data_version FROM pragma_data_version"


def _is_query(sql: str) -> bool:
    """A SELECT, with or without a WITH clause (the statements whose results are staged)."""
    words = sql[:40].split(None, 1)
    return bool(words) and words[0].upper() in ("SELECT", "WITH")


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


_BUSY_TIMEOUT = re.compile(r"\s*PRAGMA\s+busy_timeout\s*=\s*(\d+)\s*;?\s*$", re.IGNORECASE)


def _is_busy(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return bool(code & 0xFF == sqlite3.SQLITE_BUSY)
    return "locked" in str(exc)


class FetchingCursor(sqlite3.Cursor):
    """A cursor that reads a SELECT's whole result inside `execute`, without holding the
    file's read lock while Python runs.

    SQLite holds its read lock until a statement has stepped to its end, and Python's sqlite3
    lets go of the GIL at every step: with other threads busy, each row waited for the GIL with
    the lock held, and a writer's COMMIT slept in its busy handler meanwhile. So a SELECT is
    first copied, in one step of SQLite's own code, into a table of this connection's private
    in-memory temp schema (never the file; nothing on disk), which lets the lock go as that step
    ends; its rows are then read from there.
    """

    _rows: list[Any]
    _next: int

    def execute(self, sql: str, parameters: Any = (), /) -> FetchingCursor:
        self._rows, self._next = [], 0
        connection = self.connection
        if isinstance(connection, ReadOnlyConnection) and _is_query(sql):
            if connection.commit_probe is not None:
                wait_for_commit(connection.commit_probe)
            names = connection.patiently(lambda: connection.result_names(sql, parameters))
            table = connection.stage(len(names))
            try:
                connection.patiently(
                    lambda: super(FetchingCursor, self).execute(
                        f"INSERT INTO temp.{table} {sql}", parameters
                    )
                )
                aliases = ", ".join(f"c{i} AS {_quoted(name)}" for i, name in enumerate(names))
                super().execute(f"SELECT {aliases} FROM temp.{table} ORDER BY rowid")
                self._rows = super().fetchall()
            finally:
                connection.execute(f"DELETE FROM temp.{table}")
            return self
        if isinstance(connection, ReadOnlyConnection):
            if connection.takes_busy_timeout(sql):
                return self
            connection.patiently(lambda: super(FetchingCursor, self).execute(sql, parameters))
        else:
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
    progress finish, and a read refused by a commit (SQLITE_BUSY) waits for that commit's
    end by its lock bytes and reads at once, within the busy timeout (data/writer_lock.py):
    SQLite's own busy handler is off then, and `PRAGMA busy_timeout = N` sets this budget."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._names: dict[str, tuple[str, ...]] = {}
        self._stages: set[int] = set()
        self._probe: int | None = None
        self.busy_timeout = 0.0  # seconds; set by connect_readonly

    @property
    def commit_probe(self) -> int | None:
        return self._probe

    @commit_probe.setter
    def commit_probe(self, fd: int | None) -> None:
        self._probe = fd
        milliseconds = 0 if fd is not None else int(self.busy_timeout * 1000)
        sqlite3.Cursor(self).execute(f"PRAGMA busy_timeout = {milliseconds}")

    def takes_busy_timeout(self, sql: str) -> bool:
        """With a probe, `PRAGMA busy_timeout = N` is this connection's budget (SQLite's own
        handler stays off); True when `sql` was such a statement and is done."""
        match = _BUSY_TIMEOUT.match(sql)
        if match is None:
            return False
        self.busy_timeout = int(match.group(1)) / 1000
        if self._probe is None:
            sqlite3.Cursor(self).execute(f"PRAGMA busy_timeout = {match.group(1)}")
        return True

    def patiently(self, call: Callable[[], T]) -> T:
        """`call`, tried again while a commit refuses it (SQLITE_BUSY), each time as soon as
        the commit has ended, for at most the busy timeout (without a probe: SQLite's own
        busy handler waits, and this tries once)."""
        probe = self._probe
        until: float | None = None
        while True:
            try:
                return call()
            except sqlite3.OperationalError as exc:
                if probe is None or not _is_busy(exc):
                    raise
                now = time.perf_counter()
                if until is None:
                    until = now + self.busy_timeout
                if now >= until:
                    raise
                wait_for_readers_turn(probe, until)

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
    assert isinstance(conn, ReadOnlyConnection)
    conn.busy_timeout = busy_timeout
    # The staging tables live in memory: never a temp file beside the database or in /tmp.
    conn.execute("PRAGMA temp_store = MEMORY")
    return conn


def change_counter(fd: int, pread: Callable[[int, int, int], bytes] = os.pread) -> int | None:
    """The file change counter of a database in a rollback-journal mode (velora's), read from
    its header without a lock; None in WAL mode, where it is not kept, or if unreadable.

    SQLite adds one to it at every commit and reads it itself to know whether its cache is
    stale. Read mid-commit it may be new before the commit is: a read then waits for the
    writer's lock like any other, and sees the commit.
    """
    try:
        header = pread(fd, 28, 0)
    except OSError:
        return None
    if len(header) < 28 or header[18] == 2 or header[19] == 2:
        return None
    return int.from_bytes(header[24:28], "big")
