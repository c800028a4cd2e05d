"""The remote reader: the program velora-tui runs on another host, sent over the connection.
The command line is a short bootstrap (link.BOOTSTRAP) that reads this file's text from stdin;
the arguments (JSON) follow on the next line. Nothing is installed, created or written there.

It must run on any Python 3.8+ with the standard library alone, so it imports nothing of
velora-tui and keeps to 3.8's syntax. It keeps the project's reading rules
(docs/reading-rules.md): the database opened read-only by URI (`mode=ro`, autocommit,
`query_only`), every read short and fetched whole at once; a commit in progress finishes first
(F_GETLK on the writer's lock bytes); between reads only the header's change counter is looked
at (a pread, no lock), confirmed by `PRAGMA data_version` once a second and always in WAL mode.

The host answers the questions the local side asks (its data layer's own statements, each
bounded by a LIMIT): rows nobody looks at never cross the link. What it says unasked is only
that a database is there (`db`), that it changed (`v`, at most once per READ_GAP while commits
pour in, as `tail -f` reads), and its state.

At most OPEN_FILES databases are open at once (a host may hold thousands: a sweep): the one
used least recently is closed, and looked at every CLOSED_LOOK s by its header alone (opened,
read, closed: its change counter and identity) until it changes, when it is opened again.
Directories are walked for new databases no more often than their last walk's cost allows
(WALK_SHARE): a tree of 10,000 folders on a shared file system is not walked every 2 s.
It is single-threaded, so no other thread of its own can hold the GIL while a read holds the lock.

What it writes to stdout, one JSON object per line (PROTOCOL is the version):
- {"t": "hello", "v": PROTOCOL, "python": "3.11.2", "exe": "/usr/bin/python3.11"}
- {"t": "db", "k": N, "spec": I, "path": ..., "ident": ..., "entropy": bool}: a database found
  below source I (again, with another ident, when the file was replaced);
- {"t": "v", "k": N}: database N may hold something new;
- {"t": "a", "n": N, "rows": [[...], ...]} or {"t": "a", "n": N, "error": "..."}: the answer to
  request N (bytes as {"b": hex}; NaN and infinities as JSON's NaN/Infinity);
- {"t": "state", "spec": I, "path": ..., "state": "waiting|locked|unreadable|ok", "why": ...};
- {"t": "synced"} once every database there was at the start is announced; {"t": "hb"}.
What it reads on stdin after its arguments, one JSON object per line:
- {"q": N, "k": K, "sql": "SELECT ...", "p": {...} or [...]}: a request;
- {"again": TOKEN, "specs": [...]}: a new user (launch.borrow) of these sources: hello with
  `"again": TOKEN`, then every database, state and synced as at the start.
It ends when its stdin closes (the local side went away).
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

PROTOCOL = 2
BUSY_STEP = 0.01  # seconds between looks while commits come in (the 2 s after a change)
IDLE_STEP = 0.025
BUSY_FOR = 2.0
READ_GAP = 0.04  # changes of one database said at most this often while commits pour in
# ... and less often when many databases stream at once: each change said is a read of the
# local side (the gap grows by READ_GAP for every BUSY_SHARE databases streaming).
BUSY_SHARE = 8
CONFIRM = 1.0  # data_version at least this often, and the file's identity
RESCAN = 2.0  # directories walked again for new metrics.db files at most this often ...
WALK_SHARE = 0.002  # ... and no more often than keeps the walks below this share of the time
MAX_RESCAN = 60.0
WATCHED_RESCAN = 300.0  # with every folder watched (inotify), a walk is only a safety net
HEARTBEAT = 5.0
OPEN_FILES = 64  # databases open at once (two file descriptors each), fewer under a low limit
CLOSED_LOOK = 0.5  # seconds between looks at a closed database's header
MAX_TEXT = 1_000_000  # a config longer than this is cut (the local side refuses longer lines)
MAX_ANSWER = 6_000_000  # bytes of one answer line (the local side reads lines up to 8 MiB)
LOCKED_FOR = 2.0  # a lock that lasts this long is said (one met now and then is not)
WRITER_WAIT = 0.005  # a read waits at most this long for a commit in progress to finish
SKIP_DIRS = {"node_modules", "__pycache__", "site-packages", ".git", ".venv", "venv"}
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
    """A value as JSON carries it: bytes as {"b": hex}, long text cut."""
    if isinstance(value, bytes):
        return {"b": value[:MAX_TEXT].hex()}
    if isinstance(value, str) and len(value) > MAX_TEXT:
        return value[:MAX_TEXT]
    return value


class Database:
    """One remote metrics.db: its changes said, its questions answered."""

    def __init__(
        self, key: int, spec: int, path: str, pool: Optional[Dict["Database", None]] = None
    ) -> None:
        self.key, self.spec, self.path = key, spec, path
        # The databases open now, least recently used first (Reader.trim closes the first).
        self.pool = {} if pool is None else pool  # type: Dict[Database, None]
        self.known = False  # opened and announced (and still so while evicted)
        self.evicted = False  # closed to spare file descriptors: its header is looked at
        self.looked = 0.0
        self.fd = -1
        self.conn = None  # type: Optional[sqlite3.Connection]
        self.ident = ""
        self.entropy = True
        self.counter = b""
        self.version = -1
        self.confirmed = 0.0
        self.state = ""
        self.wal = False
        self.told = False  # its first change said (the local side then reads it)
        self.last_read = 0.0
        self.last_sent = -BUSY_FOR
        self.locked_since = None  # type: Optional[float]

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
        """Closed to spare file descriptors; looked at by its header until it changes."""
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
            conn.execute("PRAGMA query_only = 1")
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
        except sqlite3.Error as exc:
            self.close()
            self.failed(str(exc), time.monotonic())
            return False
        self.ident = "%d:%d" % (st.st_dev, st.st_ino)
        self.wal = header[18:19] == b"\x02"
        send(
            {
                "t": "db",
                "k": self.key,
                "spec": self.spec,
                "path": self.path,
                "ident": self.ident,
                "entropy": self.entropy,
            }
        )
        self.report("ok")
        self.counter = os.pread(self.fd, 4, 24) if not self.wal else b""
        self.version = -1
        self.known = True
        self.told = False
        self.pool[self] = None
        return True

    def replaced(self) -> bool:
        try:
            st = os.stat(self.path)
        except OSError:
            return True
        return "%d:%d" % (st.st_dev, st.st_ino) != self.ident

    def ready(self) -> bool:
        """Open (opened again when evicted or failed); False when it cannot be now."""
        if self.conn is not None:
            return True
        if self.evicted:
            return self.attach()
        return self.open()

    def use(self) -> None:
        """The most recently used now: the last to be closed."""
        if self in self.pool:
            del self.pool[self]
            self.pool[self] = None

    def poll(self, now: float, gap: float = READ_GAP) -> bool:
        """Say whether it changed; True when it did."""
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
            changed = self.confirm(now)
        else:
            if now - self.last_read < gap:
                return False  # looked at again at a later step: nothing is missed
            if self.wal:
                changed = self.confirm(now)
            else:
                counter = os.pread(self.fd, 4, 24)
                changed = counter != self.counter
                self.counter = counter
        if not changed and self.told:
            return False
        self.last_read = now
        self.use()
        self.told = True
        send({"t": "v", "k": self.key})
        return True

    def confirm(self, now: float) -> bool:
        """`data_version` read (the read lock, briefly): whether it moved since last read."""
        assert self.conn is not None
        self.wait_for_writer()
        try:
            version = self.conn.execute("PRAGMA data_version").fetchone()[0]
        except sqlite3.Error as exc:
            self.failed(str(exc), now)
            return False
        self.locked_since = None
        self.report("ok")
        self.confirmed = now
        if not self.wal:
            self.counter = os.pread(self.fd, 4, 24)
        changed = bool(version != self.version)
        self.version = version
        return changed

    def failed(self, text: str, now: float) -> None:
        """A read that failed. A lock met now and then (SQLite does not always wait out its
        busy timeout for a commit in progress) is looked at again at the next step; one that
        lasts LOCKED_FOR is the database's state."""
        if "locked" in text or "busy" in text or "readonly" in text:
            if self.locked_since is None:
                self.locked_since = now
            if now - self.locked_since < LOCKED_FOR:
                self.confirmed = 0.0  # confirmed again at the next step
                return
            self.report("locked", text)
        else:
            self.report("unreadable", text)
        self.confirmed = 0.0

    def wait_for_writer(self) -> None:
        deadline = time.perf_counter() + WRITER_WAIT
        while writer_busy(self.fd) and time.perf_counter() < deadline:
            time.sleep(0.0002)

    def answer(self, number: int, sql: str, parameters: Any) -> None:
        """One request: its rows fetched whole at once (the statement bounds them), or why not."""
        if not self.ready():
            send({"t": "a", "n": number, "error": "not open: %s" % (self.state or "unknown")})
            return
        assert self.conn is not None
        self.use()
        self.wait_for_writer()
        try:
            rows = self.conn.execute(sql, parameters).fetchall()
        except (sqlite3.Error, ValueError, TypeError, OverflowError) as exc:
            send({"t": "a", "n": number, "error": str(exc)[:500]})
            return
        line = json.dumps(
            {"t": "a", "n": number, "rows": [[cell(v) for v in row] for row in rows]},
            separators=(",", ":"),
            default=str,
        )
        if len(line) > MAX_ANSWER:
            send({"t": "a", "n": number, "error": "answer too large (%d bytes)" % len(line)})
            return
        sys.stdout.buffer.write(line.encode("utf-8", "replace") + b"\n")
        sys.stdout.buffer.flush()


IN_MOVED_TO, IN_CREATE, IN_Q_OVERFLOW, IN_IGNORED, IN_ONLYDIR, IN_ISDIR = (
    0x80,
    0x100,
    0x4000,
    0x8000,
    0x1000000,
    0x40000000,
)
EVENT = struct.Struct("iIII")


class Watches:
    """Linux's inotify (through ctypes) on every folder walked: what is made below a source is
    known at once, so a big tree is walked again only as a safety net. Where there is none
    (another system, the user's limit of watches reached, events lost), `complete` is False
    and the walks are paced by their cost alone."""

    def __init__(self) -> None:
        self.fd = -1
        self.libc = None  # type: Any
        self.paths = {}  # type: Dict[int, str]
        self.watched: set[str] = set()
        self.complete = False
        if not sys.platform.startswith("linux"):
            return
        try:
            import ctypes

            # The process's own symbols, libc's among them (ctypes.util.find_library would run
            # ldconfig: ~60 ms of the reader's start).
            libc = ctypes.CDLL(None, use_errno=True)
            fd = int(libc.inotify_init1(os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)))
        except (OSError, AttributeError):
            return
        if fd >= 0:
            self.libc, self.fd, self.complete = libc, fd, True

    def add(self, path: str) -> None:
        if self.fd < 0 or path in self.watched:
            return
        wd = int(
            self.libc.inotify_add_watch(
                self.fd, os.fsencode(path), IN_CREATE | IN_MOVED_TO | IN_ONLYDIR
            )
        )
        if wd < 0:
            self.complete = False  # the limit of watches, most often: walks find the rest
            return
        self.paths[wd] = path
        self.watched.add(path)

    def made(self) -> List[Any]:
        """(path, is a folder) of what was made in a watched folder since last asked."""
        found = []  # type: List[Any]
        while True:
            try:
                data = os.read(self.fd, 65536)
            except (BlockingIOError, InterruptedError):
                return found
            except OSError:
                self.complete = False
                return found
            offset = 0
            while offset + EVENT.size <= len(data):
                wd, mask, _, length = EVENT.unpack_from(data, offset)
                raw = data[offset + EVENT.size : offset + EVENT.size + length]
                offset += EVENT.size + length
                if mask & IN_Q_OVERFLOW:
                    self.complete = False  # some were lost: the next walk finds them
                elif mask & IN_IGNORED:
                    self.watched.discard(self.paths.pop(wd, ""))
                elif wd in self.paths:
                    name = os.fsdecode(raw.rstrip(b"\0"))
                    found.append((os.path.join(self.paths[wd], name), bool(mask & IN_ISDIR)))


class Reader:
    def __init__(self, specs: List[str]) -> None:
        self.specs = [os.path.abspath(os.path.expanduser(s)) for s in specs]
        self.databases = {}  # type: Dict[str, Database]
        self.by_key = {}  # type: Dict[int, Database]
        self.dir_state = {}  # type: Dict[int, str]
        self.pool = {}  # type: Dict[Database, None]  # open databases, least recently used first
        self.open_files = open_files()
        self.pending = b""
        self.walk_cost = 0.0
        self.watches = Watches()
        self.synced = False  # every database there at the start (or `again`) announced

    def discover(self) -> None:
        began = time.monotonic()
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
                self.add(index, path)
        self.walk_cost = time.monotonic() - began

    def add(self, index: int, path: str) -> None:
        if path not in self.databases:
            database = Database(len(self.databases), index, path, self.pool)
            self.databases[path] = database
            self.by_key[database.key] = database

    def rescan_every(self) -> float:
        """Seconds between walks: RESCAN, or more when a walk costs more than WALK_SHARE of
        that (a walk of 10,000 folders takes ~0.1 s of CPU: then every 50 s), or only now and
        then while every folder is watched."""
        if self.watches.complete:
            return WATCHED_RESCAN
        return min(MAX_RESCAN, max(RESCAN, self.walk_cost / WALK_SHARE))

    def walk(self, root: str) -> List[str]:
        found = []  # type: List[str]
        for directory, dirs, files in os.walk(root):
            self.watches.add(directory)
            dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("."))
            if "metrics.db" in files:
                found.append(os.path.join(directory, "metrics.db"))
        return found

    def made(self) -> None:
        """What inotify says was made below the sources: a folder is walked (and watched), a
        metrics.db is a database."""
        for path, folder in self.watches.made():
            name = os.path.basename(path)
            if folder and (name in SKIP_DIRS or name.startswith(".")):
                continue
            for index, spec in enumerate(self.specs):
                if not path.startswith(spec.rstrip(os.sep) + os.sep):
                    continue
                for found in self.walk(path) if folder else [path]:
                    if os.path.basename(found) == "metrics.db":
                        self.add(index, found)
                break

    def handle(self, line: bytes) -> None:
        try:
            request = json.loads(line)
            if isinstance(request, dict) and "again" in request:
                self.again(request["again"], request.get("specs"))
                return
            number, key, sql = request["q"], request["k"], request["sql"]
            parameters = request.get("p", [])
        except (ValueError, KeyError, TypeError):
            send({"t": "error", "why": "a request that is not one"})
            return
        if type(number) is not int or not isinstance(sql, str):
            send({"t": "error", "why": "a request that is not one"})
            return
        if not isinstance(parameters, (list, dict)):
            send({"t": "a", "n": number, "error": "parameters that are not a list or an object"})
            return
        database = self.by_key.get(key) if type(key) is int else None
        if database is None or not database.known:
            send({"t": "a", "n": number, "error": "no such database open"})
            return
        database.answer(number, sql, parameters)
        self.trim()

    def trim(self) -> None:
        """At most `open_files` databases open: the least recently used closed first."""
        while len(self.pool) > self.open_files:
            next(iter(self.pool)).evict()

    def hello(self, again: Optional[str] = None) -> None:
        message = {
            "t": "hello",
            "v": PROTOCOL,
            "python": sys.version.split()[0],
            "exe": sys.executable,  # run by its path next time (interpreters.py)
        }  # type: Dict[str, Any]
        if again is not None:
            message["again"] = again
        send(message)

    def again(self, token: Any, specs: Any) -> None:
        """Start again for a new user of this reader (a command that borrowed it from the one
        that kept it, keeper.py), on its sources `specs`: hello with its `token` (what comes
        before it is the last user's), then everything as a new reader says it: every database
        opened and announced anew, every state, then synced."""
        if (
            not isinstance(token, str)
            or len(token) > 64
            or not isinstance(specs, list)
            or not all(isinstance(spec, str) for spec in specs)
        ):
            send({"t": "error", "why": "a request that is not one"})
            return
        self.specs = [os.path.abspath(os.path.expanduser(s)) for s in specs]
        for database in list(self.databases.values()):
            database.close()
        self.databases.clear()
        self.by_key.clear()
        self.dir_state.clear()
        self.hello(token)
        self.discover()
        self.synced = False

    def run(self) -> None:
        self.hello()
        self.discover()
        last_change = last_beat = last_scan = time.monotonic()
        while True:
            now = time.monotonic()
            if now - last_scan >= self.rescan_every():
                last_scan = now
                self.discover()
            busy = False
            streaming = sum(now - d.last_sent < BUSY_FOR for d in self.databases.values())
            gap = READ_GAP * max(1.0, streaming / BUSY_SHARE)
            for database in list(self.databases.values()):
                if database.poll(now, gap):
                    busy = True
                    database.last_sent = now
                self.trim()
            if not self.synced:
                self.synced = True
                send({"t": "synced"})
            now = time.monotonic()
            if busy:
                last_change = now
            if now - last_beat >= HEARTBEAT:
                last_beat = now
                send({"t": "hb"})
            step = BUSY_STEP if now - last_change < BUSY_FOR else IDLE_STEP
            if not self.requests(step):
                return

    def requests(self, timeout: float) -> bool:
        """Wait up to `timeout` s for requests and answer them; False when stdin closed (the
        local side is gone). Requests keep coming: answered until none waits."""
        fd = sys.stdin.fileno()
        watching = [self.watches.fd] if self.watches.fd >= 0 else []
        while True:
            try:
                ready, _, _ = select.select([fd, *watching], [], [], timeout)
            except (OSError, ValueError):
                time.sleep(timeout)
                return True
            if not ready:
                return True
            if watching and watching[0] in ready:
                self.made()
                if fd not in ready:
                    timeout = 0.0
                    continue
            data = os.read(fd, 1 << 16)
            if not data:
                return False
            self.pending += data
            while b"\n" in self.pending:
                line, self.pending = self.pending.split(b"\n", 1)
                if line.strip():
                    self.handle(line)
            if len(self.pending) > 1 << 24:
                send({"t": "error", "why": "a request longer than 16 MiB"})
                return False
            timeout = 0.0  # what else arrived, then back to the databases


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


def main() -> int:
    """The arguments: one JSON line on stdin (after this program's text, see link.BOOTSTRAP).
    Requests follow it only once a database has been announced, so none is already in
    stdin's buffer when `requests` reads the descriptor itself."""
    try:
        args = json.loads(sys.stdin.buffer.readline())
        specs = [str(s) for s in args["specs"]]
    except (ValueError, KeyError, TypeError) as exc:
        send({"t": "error", "why": "bad arguments: %s" % exc})
        return 2
    try:
        Reader(specs).run()
    except (BrokenPipeError, KeyboardInterrupt):
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
