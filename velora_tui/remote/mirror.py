"""The local copy of a remote database: a SQLite file of our own in the cache folder, which the
data layer then reads like any local metrics.db (file events, exactly once, commit order, and the
last state kept when the host is away).

Layout: `<cache>/remote/<source>/<database>/metrics.db`, where <source> is a hash of the source
as the user wrote it (host and path) and <database> a hash of the remote path the reader found:
nothing the remote sends ever decides where a file is written. Each copy is created with
velora's own DDL for the schema the remote file has (never SQL from the remote), and every row
arrives as parameters after its values are checked (ids are integers above the last one held,
texts capped). A copy holds what the remote file holds, so it is about its size.

Everything that arrives is untrusted: a value that does not fit raises BadData, and the link
shows the source as unreadable rather than writing it.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import math
import os
import shutil
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from velora_tui.remote.folders import create_file, open_file, private_folder
from velora_tui.remote.ssh import cache_dir

COPY_NAME = "metrics.db"
LOCK_NAME = "lock"  # held by the process that keeps a source's folder (source_folder)
PRIVATE = "private"  # folders of the other processes on a kept source
MAX_NAME = 1_000  # agent, env
MAX_CONFIG = 1_000_000  # the reader cuts configs at this length too
MAX_TIME = 64
MAX_NUMBER_TEXT = 100  # text in a number column (it happens: velora stores what it is given)
MAX_PATH = 4_096

_EXPERIMENT_DDL = """
CREATE TABLE experiment (
	id INTEGER NOT NULL,
	agent VARCHAR NOT NULL,
	env VARCHAR NOT NULL,
	config VARCHAR NOT NULL,
	created_at DATETIME NOT NULL,
	PRIMARY KEY (id)
);
CREATE INDEX ix_experiment_agent ON experiment (agent);
CREATE INDEX ix_experiment_env ON experiment (env);
"""
_EPISODE_DDL = """
CREATE TABLE episode (
	id INTEGER NOT NULL,
	experiment_id INTEGER NOT NULL,
	episode_num INTEGER NOT NULL,
	reward FLOAT NOT NULL,
	length INTEGER NOT NULL,
	reward_moving_avg FLOAT NOT NULL,
	reward_moving_std FLOAT NOT NULL,
	actor_loss FLOAT NOT NULL,
	critic_loss FLOAT NOT NULL,
	{entropy}created_at DATETIME NOT NULL,
	PRIMARY KEY (id),
	FOREIGN KEY(experiment_id) REFERENCES experiment (id)
);
CREATE INDEX ix_episode_episode_num ON episode (episode_num);
CREATE INDEX ix_episode_experiment_id ON episode (experiment_id);
CREATE TABLE velora_tui_copy (key VARCHAR NOT NULL PRIMARY KEY, value VARCHAR NOT NULL);
"""
_EPISODE_COLUMNS = (
    "id",
    "experiment_id",
    "episode_num",
    "reward",
    "length",
    "reward_moving_avg",
    "reward_moving_std",
    "actor_loss",
    "critic_loss",
    "entropy_loss",
    "created_at",
)


class BadData(ValueError):
    """Something the remote sent that is not what the protocol allows."""


class BadRows(BadData):
    """Rows of one database that its copy cannot hold (a value out of range, a row that is not
    one): that database's state, while the link goes on with the others."""


# SQLite's integers are 64-bit: a larger id would raise OverflowError at the insert.
INT_RANGE = range(-(2**63), 2**63)
# Open connections to the copies, per link: each holds two files (the copy, its journal kept
# between commits), and a host may have thousands of databases.
OPEN_COPIES = 64


def ddl(entropy: bool) -> str:
    """Velora's DDL (0.2.0 with `entropy_loss`, 0.1.1 without) and the copy's own facts."""
    column = "entropy_loss FLOAT NOT NULL,\n\t" if entropy else ""
    return _EXPERIMENT_DDL + _EPISODE_DDL.format(entropy=column)


def remote_root() -> Path:
    return cache_dir() / "remote"


def made_root() -> Path:
    """The copies' folder, and the cache folder above it, made or checked: ours alone
    (folders.py; FolderError names the one that is not)."""
    private_folder(cache_dir())
    return private_folder(remote_root())


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:20]


# The source folders this process keeps (writes the copies of), with their lock's descriptor:
# held until the process ends, however it ends.
_KEPT: dict[Path, int] = {}


def source_folder(source_label: str) -> Path:
    """The folder of one remote source (created 0700); the data layer watches it.

    One process at a time keeps a source's shared folder: a copy written by two links at once
    would get rows out of id order, and readers of the copy (which read by id) would miss some.
    Another velora-tui process on the same source (a `ls` beside the running app) gets a
    private folder instead, begun from a snapshot of the shared copies so that its link only
    fetches what came since, and removed when it ends."""
    shared = private_folder(made_root() / digest(source_label))
    if shared in _KEPT:
        return shared
    # Never through a symbolic link: one planted there would have the lock created where it
    # points (O_CREAT follows them).
    fd = open_file(shared / LOCK_NAME, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return _private_folder(shared)
    _KEPT[shared] = fd
    return shared


def _private_folder(shared: Path) -> Path:
    private_root = private_folder(made_root() / PRIVATE)
    _remove_abandoned(private_root)
    folder = private_root / f"{os.getpid()}-{shared.name}"
    shutil.rmtree(folder, ignore_errors=True)
    os.mkdir(folder, 0o700)  # fresh: one found in its place is an error
    private_folder(folder)
    atexit.register(shutil.rmtree, folder, True)
    with contextlib.suppress(OSError):
        for entry in sorted(shared.iterdir()):
            copy = entry / COPY_NAME
            if copy.is_file():
                _snapshot(copy, folder / entry.name / COPY_NAME)
    return folder


def _snapshot(copy: Path, target: Path) -> None:
    """A consistent copy of a copy another process writes (SQLite's backup; a damaged or
    half-begun one is left out: the link then fetches that database from its start)."""
    private_folder(target.parent)
    try:
        source = sqlite3.connect(f"file:{copy}?mode=ro", uri=True, timeout=5.0)
        try:
            destination = sqlite3.connect(create_file(target))
            try:
                source.backup(destination)
            finally:
                destination.close()
        finally:
            source.close()
    except sqlite3.Error:
        shutil.rmtree(target.parent, ignore_errors=True)


def _remove_abandoned(private_root: Path) -> None:
    """Private folders of processes that ended without removing theirs (killed)."""
    with contextlib.suppress(OSError):
        for entry in private_root.iterdir():
            pid = entry.name.split("-", 1)[0]
            if not pid.isdigit() or _alive(int(pid)):
                continue
            shutil.rmtree(entry, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # someone else's
    return True


def check_int(value: Any, what: str) -> int:
    if type(value) is not int:
        raise BadData(f"{what} is not an integer")
    return value


def check_stored_int(value: Any, what: str) -> int:
    """An integer the copy stores: within SQLite's 64 bits."""
    if check_int(value, what) not in INT_RANGE:
        raise BadData(f"{what} out of range")
    return int(value)


def check_text(value: Any, limit: int, what: str) -> str:
    if not isinstance(value, str):
        raise BadData(f"{what} is not text")
    return value[:limit]


def check_number(value: Any, what: str) -> int | float | str | None:
    """A number column's value as SQLite may hold it: a number, text, or NULL."""
    if value is None:
        return value
    if type(value) is int:
        return check_stored_int(value, what)
    if type(value) is float:
        # SQLite stores NaN as NULL, which the NOT NULL columns refuse: keep it as text.
        return "NaN" if math.isnan(value) else value
    if isinstance(value, str):
        return value[:MAX_NUMBER_TEXT]
    raise BadData(f"{what} is not a number")


def check_experiment(row: Any, after: int) -> tuple[int, str, str, str, str | None]:
    if not isinstance(row, list) or len(row) != 5:
        raise BadData("an experiment row is not a list of 5 values")
    exp_id = check_stored_int(row[0], "experiment id")
    if exp_id <= after:
        raise BadData(f"experiment id {exp_id} is not above {after}")
    created = None if row[4] is None else check_text(row[4], MAX_TIME, "created_at")
    return (
        exp_id,
        check_text(row[1], MAX_NAME, "agent"),
        check_text(row[2], MAX_NAME, "env"),
        check_text(row[3], MAX_CONFIG, "config"),
        created,
    )


def check_episode(row: Any, after: int) -> tuple[Any, ...]:
    if not isinstance(row, list) or len(row) != len(_EPISODE_COLUMNS):
        raise BadData(f"an episode row is not a list of {len(_EPISODE_COLUMNS)} values")
    episode_id = check_stored_int(row[0], "episode id")
    if episode_id <= after:
        raise BadData(f"episode id {episode_id} is not above {after}")
    values: list[Any] = [episode_id, check_stored_int(row[1], "experiment_id")]
    values += [
        check_number(v, name) for v, name in zip(row[2:10], _EPISODE_COLUMNS[2:10], strict=True)
    ]
    values.append(None if row[10] is None else check_text(row[10], MAX_TIME, "created_at"))
    return tuple(values)


@dataclass(slots=True)
class Position:
    """Where a copy ends: the remote file it copies and its last ids."""

    ident: str
    last_experiment: int
    last_episode: int


class OpenCopies:
    """The open connections of one link's copies, at most `limit` at once: the one written
    least recently is closed first (and opened again at its next rows), so that a host with
    thousands of databases never runs this process out of file descriptors. Used by the link's
    thread only."""

    def __init__(self, limit: int = OPEN_COPIES) -> None:
        self.limit = limit
        self.open: dict[Mirror, None] = {}  # least recently written first

    def use(self, mirror: Mirror) -> None:
        self.open.pop(mirror, None)
        self.open[mirror] = None
        while len(self.open) > self.limit:
            oldest = next(iter(self.open))
            oldest.close()  # which forgets it

    def forget(self, mirror: Mirror) -> None:
        self.open.pop(mirror, None)


class Mirror:
    """One remote database's local copy, written only by its link's thread."""

    def __init__(self, folder: Path, remote_path: str, copies: OpenCopies | None = None) -> None:
        self.folder = folder / digest(remote_path)
        self.path = self.folder / COPY_NAME
        self.remote_path = remote_path
        self.conn: sqlite3.Connection | None = None
        self.copies = copies or OpenCopies()
        self.entropy = True
        self.position: Position | None = None

    @classmethod
    def existing(cls, folder: Path, copies: OpenCopies | None = None) -> list[Mirror]:
        """The copies already held in a source's folder (from an earlier run)."""
        mirrors = []
        with contextlib.suppress(OSError):
            for entry in sorted(folder.iterdir()):
                copy = entry / COPY_NAME
                if not copy.is_file():
                    continue
                facts = read_facts(copy)
                remote = facts.get("path")
                if remote is None or digest(remote) != entry.name:
                    continue
                mirror = cls(folder, remote, copies)
                mirror.entropy = facts.get("entropy") == "1"
                mirror.position = _position(copy, facts)
                mirrors.append(mirror)
        return mirrors

    def connect(self) -> sqlite3.Connection:
        if self.conn is None:
            # Written by the link's thread; closed by whoever stops the link once it has ended.
            conn = sqlite3.connect(
                self.path, isolation_level=None, timeout=5.0, check_same_thread=False
            )
            # A cache: after a crash of the machine it is fetched again (see Link) rather than
            # synced to the disk at every commit.
            conn.execute("PRAGMA synchronous = OFF")
            # The journal is kept between commits (zeroed, not deleted): no file created and
            # removed at every commit, which the readers' directory watch would also see.
            conn.execute("PRAGMA journal_mode = PERSIST")
            self.conn = conn
        self.copies.use(self)
        return self.conn

    def start(self, ident: str, entropy: bool, reset: bool) -> None:
        """The reader found the remote file: keep the copy if it is of that file, else begin
        a new one (a new file in place of the old: readers see it replaced)."""
        if (
            not reset
            and self.position is not None
            and self.position.ident == ident
            and self.entropy == entropy
            and self.path.exists()
        ):
            return
        self.close()
        private_folder(self.folder)
        fresh = self.folder / "new.tmp"
        with contextlib.suppress(FileNotFoundError):
            fresh.unlink()
        conn = sqlite3.connect(create_file(fresh), isolation_level=None)
        try:
            # Not synced to the disk, as the copy's commits are not (connect): a copy damaged
            # by a crash of the machine is fetched anew. Synced, it took 43 ms a database
            # (5,000 on one host: 3.5 min), now ~1 ms.
            conn.execute("PRAGMA synchronous = OFF")
            conn.executescript("BEGIN;" + ddl(entropy))
            conn.executemany(
                "INSERT INTO velora_tui_copy (key, value) VALUES (?, ?)",
                [
                    ("path", self.remote_path),
                    ("ident", ident),
                    ("entropy", "1" if entropy else "0"),
                ],
            )
            conn.execute("COMMIT")
        finally:
            conn.close()
        # The old copy's journal (kept between its commits) must not be taken for the new one's.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path.with_name(COPY_NAME + "-journal"))
        os.replace(fresh, self.path)
        self.entropy = entropy
        self.position = Position(ident, 0, 0)

    def apply(self, experiments: Sequence[Any], episodes: Sequence[Any]) -> int:
        """Check and store one message's rows in one transaction; the episodes stored."""
        if self.position is None:
            raise BadData("rows before their database")
        position = self.position
        exp_rows, after = [], position.last_experiment
        ep_rows: list[tuple[Any, ...]] = []
        try:
            for row in experiments:
                checked = check_experiment(row, after)
                after = checked[0]
                exp_rows.append(checked)
            after = position.last_episode
            for row in episodes:
                values = check_episode(row, after)
                after = values[0]
                ep_rows.append(values if self.entropy else values[:9] + values[10:])
        except BadData as exc:
            raise BadRows(str(exc)) from None
        if not exp_rows and not ep_rows:
            return 0
        columns = [c for c in _EPISODE_COLUMNS if self.entropy or c != "entropy_loss"]
        conn = self.connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                "INSERT INTO experiment (id, agent, env, config, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                exp_rows,
            )
            conn.executemany(
                f"INSERT INTO episode ({', '.join(columns)})"
                f" VALUES ({', '.join('?' for _ in columns)})",
                ep_rows,
            )
            conn.execute("COMMIT")
        except (sqlite3.Error, OverflowError) as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            if isinstance(exc, OverflowError):  # the checks keep ints in range: never, yet
                raise BadRows(f"a value out of range ({exc})") from None
            raise BadData(f"rows the copy refuses ({exc})") from None
        if exp_rows:
            position.last_experiment = exp_rows[-1][0]
        if ep_rows:
            position.last_episode = ep_rows[-1][0]
        return len(ep_rows)

    def close(self) -> None:
        self.copies.forget(self)
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def read_facts(copy: Path) -> dict[str, str]:
    try:
        conn = sqlite3.connect(f"file:{copy}?mode=ro", uri=True, isolation_level=None)
        try:
            rows = conn.execute("SELECT key, value FROM velora_tui_copy").fetchall()
        finally:
            conn.close()
    except sqlite3.Error:
        return {}
    return {str(k): str(v) for k, v in rows}


def _position(copy: Path, facts: dict[str, str]) -> Position | None:
    try:
        conn = sqlite3.connect(f"file:{copy}?mode=ro", uri=True, isolation_level=None)
        try:
            exp = conn.execute("SELECT max(id) FROM experiment").fetchone()[0] or 0
            ep = conn.execute("SELECT max(id) FROM episode").fetchone()[0] or 0
        finally:
            conn.close()
    except sqlite3.Error:
        return None  # damaged (the machine crashed while it was written): fetched anew
    ident = facts.get("ident")
    return Position(ident, int(exp), int(ep)) if ident else None


def _checked_root() -> Path | None:
    """The copies' folder if there is one, checked as made_root does (never created here)."""
    root = remote_root()
    if not os.path.lexists(root):
        return None
    private_folder(cache_dir(), create=False)
    return private_folder(root, create=False)


def cache_size() -> int:
    root = _checked_root()
    if root is None:
        return 0
    total = 0
    for folder, _, files in os.walk(root):  # never into a symbolic link
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(folder, name)).st_size
    return total


def clear_cache() -> Path:
    """The copies' folder removed, never anything a symbolic link leads to: the folder itself
    is checked (FolderError), and rmtree removes a link found inside without following it."""
    root = _checked_root()
    if root is not None:
        shutil.rmtree(root, ignore_errors=True)
    return remote_root()
