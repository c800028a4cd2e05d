"""The remote reader: the program velora-tui runs on another host, sent over the connection.
The command line is a short bootstrap (link.BOOTSTRAP) that reads this file's text from stdin;
the arguments (JSON) follow on the next line. Nothing is installed, created or written there.

It must run on any Python 3.8+ with the standard library alone, so it imports nothing of
velora-tui and keeps to 3.8's syntax. It keeps the project's reading rules
(docs/reading-rules.md): the database opened read-only by URI (`mode=ro`, autocommit), every
read short (at most ROWS rows) and fetched whole at once; a commit in progress finishes first
(F_GETLK on the writer's lock bytes); between reads only the header's change counter is looked
at (a pread, no lock), confirmed by `PRAGMA data_version` once a second and always in WAL mode;
reads of one file at least READ_GAP apart while commits pour in (the first after a quiet spell
at once), as `tail -f` does (data/feed.py: READ_GAP).
At most OPEN_FILES databases are open at once (a host may hold thousands: a sweep): the one
read least recently is closed, and looked at every CLOSED_LOOK s by its header alone (opened,
read, closed: its change counter and identity) until it changes, when it is opened again.
It is single-threaded, so no other thread of its own can hold the GIL while a read holds the lock.

What it writes to stdout, one JSON object per line (PROTOCOL is the version):
- {"t": "hello", "v": PROTOCOL, "python": "3.11.2"}
- {"t": "db", "k": N, "spec": I, "path": ..., "ident": ..., "entropy": bool, "reset": bool}:
  a database found below source I, read from where the local copy ended unless `reset`
  (another file than the copy's, or rewritten: the copy starts anew);
- {"t": "rows", "k": N, "x": [experiment rows], "e": [episode rows], "left": n}: new rows by
  id, episodes first read so that every episode's experiment is in the same message or before;
- {"t": "state", "spec": I, "path": ..., "state": "waiting|locked|unreadable|ok", "why": ...};
- {"t": "synced"} once everything there was at the start has been sent; {"t": "hb"} heartbeats.
It ends when its stdin closes (the local side went away), or after `synced` when asked `once`.
"""

from __future__ import annotations

import json
import os
import select
import sqlite3
import struct
import sys
import time
from typing import Any, Dict, List, Optional

PROTOCOL = 1
ROWS = 2000  # rows per read: a short read lock (docs/performance.md, Remote hosts)
BUSY_STEP = 0.01  # seconds between looks while rows come in (the 2 s after a change)
IDLE_STEP = 0.025
BUSY_FOR = 2.0
READ_GAP = 0.04  # reads of one database at least this far apart while commits pour in
# ... and further apart when many databases stream at once: each read is a message and a commit
# of the local copy, so 32 files at 20 episodes/s would otherwise cost the local side 640
# commits a second (the gap grows by READ_GAP for every BUSY_SHARE databases streaming).
BUSY_SHARE = 8
CONFIRM = 1.0  # data_version at least this often, and the file's identity
RESCAN = 2.0  # directories walked again for new metrics.db files
HEARTBEAT = 5.0
OPEN_FILES = 64  # databases open at once (two file descriptors each), fewer under a low limit
CLOSED_LOOK = 0.5  # seconds between looks at a closed database's header
MAX_TEXT = 1_000_000  # a config longer than this is cut (the local side refuses longer lines)
SKIP_DIRS = {"node_modules", "__pycache__", "site-packages", ".git", ".venv", "venv"}
EPISODE = (
    "id, experiment_id, episode_num, reward, length, reward_moving_avg, reward_moving_std,"
    " actor_loss, critic_loss, {entropy}, created_at"
)
PENDING_BYTE = 0x40000000
FLOCK = struct.Struct("hhqqi4x")


def send(message: Dict[str, Any]) -> None:
    line = json.dumps(message, separators=(",", ":"), default=str) + "\n"
    sys.stdout.buffer.write(line.encode("utf-8", "replace"))
    sys.stdout.buffer.flush()


def writer_busy(fd: int) -> bool:
    """Another process holds RESERVED or PENDING (Linux only; False where unknown)."""
    if sys.platform != "linux" or struct.calcsize("P") != 8:
        return False
    import fcntl

    try:
        answer = fcntl.fcntl(fd, fcntl.F_GETLK, FLOCK.pack(fcntl.F_WRLCK, 0, PENDING_BYTE, 2, 0))
    except OSError:
        return False
    return bool(FLOCK.unpack(answer)[0] != fcntl.F_UNLCK)


def cell(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, str) and len(value) > MAX_TEXT:
        return value[:MAX_TEXT]
    return value


class Database:
    """One remote metrics.db, read from (exp, episode) ids on."""

    def __init__(
        self,
        key: int,
        spec: int,
        path: str,
        start: Optional[List[Any]],
        pool: Optional[Dict[Database, None]] = None,
    ) -> None:
        self.key, self.spec, self.path = key, spec, path
        self.start = start  # [ident, last experiment id, last episode id] of the local copy
        # The databases open now, least recently read first (Reader.trim closes the first).
        self.pool: Dict[Database, None] = {} if pool is None else pool
        self.known = False  # opened and announced (and still so while evicted)
        self.evicted = False  # closed to spare file descriptors: its header is looked at
        self.looked = 0.0
        self.fd = -1
        self.conn: Optional[sqlite3.Connection] = None
        self.ident = ""
        self.entropy = True
        self.last_exp = 0
        self.last_ep = 0
        self.counter = b""
        self.version = -1
        self.confirmed = 0.0
        self.state = ""
        self.wal = False
        self.caught_up = False
        self.last_read = 0.0
        self.last_sent = -BUSY_FOR

    def report(self, state: str, why: str = "") -> None:
        if state != self.state:
            self.state = state
            send(
                {
                    "t": "state",
                    "k": self.key,  # a database's state (a source's own has no key)
                    "spec": self.spec,
                    "path": self.path,
                    "state": state,
                    "why": why,
                }
            )

    def close(self) -> None:
        self.pool.pop(self, None)
        self.evicted = False
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def evict(self) -> None:
        """Closed to spare file descriptors; read on from where it was when it changes."""
        self.close()
        self.evicted = True

    def changed_while_closed(self, now: float) -> bool:
        """Whether an evicted database may hold something new: its identity or its header's
        change counter moved (in WAL mode, where commits leave the counter: once a second)."""
        try:
            fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            return True  # opening it says why
        try:
            st = os.fstat(fd)
            counter = os.pread(fd, 4, 24)
        except OSError:
            return True
        finally:
            os.close(fd)  # no connection of ours is open on it: no lock of ours to drop
        if "%d:%d" % (st.st_dev, st.st_ino) != ":".join(self.ident.split(":")[:2]):
            return True
        if self.wal:
            return now - self.confirmed >= CONFIRM
        return counter != self.counter

    def attach(self) -> bool:
        """Open again an evicted database, without announcing it anew (a file replaced
        meanwhile is opened as a new one)."""
        self.evicted = False
        if self.replaced():
            return self.open()
        try:
            self.fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            self.conn = self.connect()
        except (OSError, sqlite3.Error) as exc:
            self.close()
            text = (exc.strerror if isinstance(exc, OSError) else None) or str(exc)
            self.report("locked" if "locked" in text else "unreadable", text)
            self.known = False  # opened (and announced) anew once it can be
            return False
        self.version = -1  # data_version counts per connection: the old one's is no measure
        self.counter = b""
        self.pool[self] = None
        return True

    def connect(self) -> sqlite3.Connection:
        from urllib.parse import quote

        conn = sqlite3.connect(
            # An empty authority: a path that begins with `//` is no host name.
            "file://" + quote(os.path.abspath(self.path)) + "?mode=ro",
            uri=True,
            isolation_level=None,
            timeout=1.0,
            check_same_thread=False,
        )
        try:
            conn.execute("PRAGMA temp_store = MEMORY")
        except sqlite3.Error:
            conn.close()
            raise
        return conn

    def open(self) -> bool:
        self.known = False
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self.report("waiting", "no file yet")
            return False
        except OSError as exc:
            self.report("unreadable", exc.strerror or str(exc))
            return False
        import stat

        if not stat.S_ISREG(st.st_mode):
            self.report("unreadable", "not a regular file")
            return False
        try:
            self.fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            header = os.pread(self.fd, 100, 0)
        except OSError as exc:
            self.close()
            self.report("unreadable", exc.strerror or str(exc))
            return False
        if not header:
            self.close()
            self.report("waiting", "file is empty; waiting for training to create the tables")
            return False
        if not header.startswith(b"SQLite format 3\x00"):
            self.close()
            self.report("unreadable", "not a SQLite database")
            return False
        try:
            self.conn = self.connect()
            tables = {r[0] for r in self.conn.execute("SELECT name FROM sqlite_master")}
            if not tables:
                self.close()
                self.report("waiting", "no tables yet; waiting for training to create them")
                return False
            if "episode" not in tables or "experiment" not in tables:
                self.close()
                self.report("unreadable", "not a velora metrics database")
                return False
            columns = {r[1] for r in self.conn.execute("PRAGMA table_info(episode)")}
            self.entropy = "entropy_loss" in columns
            top_exp = self.conn.execute("SELECT max(id) FROM experiment").fetchone()[0] or 0
            top_ep = self.conn.execute("SELECT max(id) FROM episode").fetchone()[0] or 0
        except sqlite3.Error as exc:
            self.close()
            text = str(exc)
            self.report("locked" if "locked" in text else "unreadable", text)
            return False
        self.ident = "%d:%d:%d" % (st.st_dev, st.st_ino, int(st.st_ctime))
        self.wal = header[18:19] == b"\x02"
        reset = True
        start = self.start
        if start and start[0].split(":")[:2] == self.ident.split(":")[:2]:
            self.ident = start[0]  # same file (its ctime moves with every write)
            if int(start[1]) <= top_exp and int(start[2]) <= top_ep:
                self.last_exp, self.last_ep = int(start[1]), int(start[2])
                reset = False
        if reset:
            self.last_exp = self.last_ep = 0
        self.start = None  # a file that comes back later is another one: read from its start
        send(
            {
                "t": "db",
                "k": self.key,
                "spec": self.spec,
                "path": self.path,
                "ident": self.ident,
                "entropy": self.entropy,
                "reset": reset,
            }
        )
        self.report("ok")
        self.counter = b""
        self.version = -1
        self.known = True
        self.pool[self] = None
        return True

    def replaced(self) -> bool:
        try:
            st = os.stat(self.path)
        except OSError:
            return True
        return "%d:%d" % (st.st_dev, st.st_ino) != ":".join(self.ident.split(":")[:2])

    def poll(self, now: float, gap: float = READ_GAP) -> bool:
        """Read what is new; True when rows were sent."""
        if self.conn is None and self.evicted:
            if now - self.looked < CLOSED_LOOK:
                return False
            self.looked = now
            if not self.changed_while_closed(now) or not self.attach():
                return False
        elif self.conn is None and not self.open():
            return False
        if now - self.confirmed >= CONFIRM:
            if self.replaced():
                self.close()
                if not self.open():
                    return False
            changed = True
        else:
            if now - self.last_read < gap:
                return False  # looked at again at a later step: nothing is missed
            counter = os.pread(self.fd, 4, 24)
            changed = self.wal or counter != self.counter
            if changed:
                self.counter = counter
        if not changed:
            return False
        self.last_read = now
        if self in self.pool:  # the most recently read: the last to be closed
            del self.pool[self]
            self.pool[self] = None
        return self.read(now)

    def read(self, now: float) -> bool:
        assert self.conn is not None
        sent = False
        for _ in range(50):  # at most 100,000 rows before the other databases' turn
            deadline = time.perf_counter() + 0.005
            while writer_busy(self.fd) and time.perf_counter() < deadline:
                time.sleep(0.0002)
            try:
                if now - self.confirmed >= CONFIRM or self.wal:
                    version = self.conn.execute("PRAGMA data_version").fetchone()[0]
                    self.confirmed = now
                    if version == self.version and sent is False and self.caught_up:
                        return False
                    self.version = version
                entropy = "entropy_loss" if self.entropy else "NULL"
                episodes = self.conn.execute(
                    "SELECT "
                    + EPISODE.format(entropy=entropy)
                    + " FROM episode WHERE id > ? ORDER BY id LIMIT ?",
                    (self.last_ep, ROWS),
                ).fetchall()
                experiments = self.conn.execute(
                    "SELECT id, agent, env, config, created_at FROM experiment"
                    " WHERE id > ? ORDER BY id LIMIT ?",
                    (self.last_exp, ROWS),
                ).fetchall()
                left = 0
                if len(episodes) == ROWS:
                    top = self.conn.execute("SELECT max(id) FROM episode").fetchone()[0]
                    left = max(0, int(top or 0) - int(episodes[-1][0]))
            except sqlite3.Error as exc:
                text = str(exc)
                self.report(
                    "locked" if "locked" in text or "readonly" in text else "unreadable", text
                )
                self.counter = b""  # look again at the next step
                return sent
            self.report("ok")
            if not episodes and not experiments:
                self.caught_up = True
                return sent
            if experiments:
                self.last_exp = int(experiments[-1][0])
            if episodes:
                self.last_ep = int(episodes[-1][0])
            send(
                {
                    "t": "rows",
                    "k": self.key,
                    "x": [[cell(v) for v in row] for row in experiments],
                    "e": [[cell(v) for v in row] for row in episodes],
                    "left": left,
                }
            )
            sent = True
            if len(episodes) < ROWS and len(experiments) < ROWS:
                self.caught_up = True
                return sent
        return sent


class Reader:
    def __init__(self, specs: List[str], starts: Dict[str, List[Any]]) -> None:
        self.specs = [os.path.abspath(os.path.expanduser(s)) for s in specs]
        self.starts = starts
        self.databases: Dict[str, Database] = {}
        self.dir_state: Dict[int, str] = {}
        self.pool: Dict[Database, None] = {}  # open databases, least recently read first
        self.open_files = open_files()

    def discover(self) -> None:
        for index, spec in enumerate(self.specs):
            if os.path.isdir(spec) and os.path.basename(spec) != "metrics.db":
                found = self.walk(spec)
                if not found and self.dir_state.get(index) != "waiting":
                    self.dir_state[index] = "waiting"
                    send(
                        {
                            "t": "state",
                            "spec": index,
                            "path": spec,
                            "state": "waiting",
                            "why": "no metrics.db found below it yet",
                        }
                    )
            elif not os.path.exists(spec) and os.path.basename(spec) != "metrics.db":
                found = []
                if self.dir_state.get(index) != "waiting":
                    self.dir_state[index] = "waiting"
                    send(
                        {
                            "t": "state",
                            "spec": index,
                            "path": spec,
                            "state": "waiting",
                            "why": "not there yet",
                        }
                    )
            else:
                found = [spec]
            for path in found:
                if path not in self.databases:
                    self.databases[path] = Database(
                        len(self.databases), index, path, self.starts.get(path), self.pool
                    )

    def walk(self, root: str) -> List[str]:
        found: List[str] = []
        for directory, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
            if "metrics.db" in files:
                found.append(os.path.join(directory, "metrics.db"))
        return found

    def run(self, once: bool) -> None:
        send({"t": "hello", "v": PROTOCOL, "python": sys.version.split()[0]})
        self.discover()
        last_change = last_beat = last_scan = time.monotonic()
        synced = False
        while True:
            now = time.monotonic()
            if now - last_scan >= RESCAN:
                last_scan = now
                self.discover()
            busy = False
            streaming = sum(now - d.last_sent < BUSY_FOR for d in self.databases.values())
            gap = READ_GAP * max(1.0, streaming / BUSY_SHARE)
            for database in list(self.databases.values()):
                if database.poll(now, gap):
                    busy = True
                    database.last_sent = now
                while len(self.pool) > self.open_files:
                    next(iter(self.pool)).evict()
            if not synced and all(d.caught_up or not d.known for d in self.databases.values()):
                synced = True
                send({"t": "synced"})
                if once:
                    return
            now = time.monotonic()
            if busy:
                last_change = now
            if now - last_beat >= HEARTBEAT:
                last_beat = now
                send({"t": "hb"})
            step = BUSY_STEP if now - last_change < BUSY_FOR else IDLE_STEP
            if stdin_closed(step):
                return


def open_files() -> int:
    """How many databases may be open at once: OPEN_FILES, or fewer when this process may
    open few files (each open database holds two, a third while a hot journal is looked at)."""
    try:
        import resource

        limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ImportError, OSError, ValueError):
        return OPEN_FILES
    if limit == resource.RLIM_INFINITY:
        return OPEN_FILES
    return max(1, min(OPEN_FILES, (limit - 16) // 3))


def stdin_closed(timeout: float) -> bool:
    """Sleep `timeout` s; True when stdin closed meanwhile (the local side is gone)."""
    try:
        ready, _, _ = select.select([sys.stdin.fileno()], [], [], timeout)
    except (OSError, ValueError):
        time.sleep(timeout)
        return False
    return bool(ready) and not os.read(sys.stdin.fileno(), 4096)


def main() -> int:
    """The arguments: one JSON line on stdin (after this program's text, see link.BOOTSTRAP)."""
    try:
        args = json.loads(sys.stdin.buffer.readline())
        specs = [str(s) for s in args["specs"]]
        starts = {str(k): list(v) for k, v in dict(args.get("from") or {}).items()}
        once = bool(args.get("once"))
    except (ValueError, KeyError, TypeError) as exc:
        send({"t": "error", "why": "bad arguments: %s" % exc})
        return 2
    try:
        Reader(specs, starts).run(once)
    except (BrokenPipeError, KeyboardInterrupt):
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
