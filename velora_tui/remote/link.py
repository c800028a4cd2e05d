"""One connection per host: ssh runs the remote reader (reader.py) for every source on that host,
which answers the data layer's statements there (RemoteConnection) and says when a database
changed, which moves its local stand-in (stand_ins.py).

States: connecting, connected (with the age of the last word when it is overdue),
unreachable (since when, retrying in N s: the delay doubles from 1 s to 60 s, with jitter, and
starts again from 1 s after a connection that worked), refused (authentication refused, host
key changed, unknown host, no python3: trying again cannot help, so it does not), unreadable
(the remote sent something that is not the protocol, or its reader died, or handling what it
sent failed here: tried again as an unreachable host is).

Any error while a link runs ends that connection in a state (unreadable, with the error's text)
and a retry, never in a dead thread: an answer that is not rows (a value SQLite cannot hold,
such as an id beyond its 64 bits) fails that one read, which makes that database's state, and
the link goes on with the others. A request whose connection ends, or whose host does not
answer within ANSWER_TIMEOUT, fails with SourceAway: the database keeps what it read and is
read again, from where it was, once its host is back.

The remote command line is a constant bootstrap (launch.py): the reader's source and its
arguments follow on the reader's stdin, not visible in `ps`; then the requests. A connection
the command's head start began (launch.head_start) is taken over when it is the same.

Nothing from the remote reaches the terminal unclean (values.clean_text), and no line, however
long or malformed, stops anything but this link.
"""

from __future__ import annotations

import itertools
import json
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import IO, Any

from velora_tui.data.cleaning import clean_text
from velora_tui.data.files import Rows, SourceAway
from velora_tui.data.source_names import source_names
from velora_tui.remote import interpreters, launch, reader
from velora_tui.remote.address import Host, RemoteSource
from velora_tui.remote.ssh import READY, SshOptions, last_line, refusal
from velora_tui.remote.stand_ins import MAX_PATH, StandIn

# Room for the largest message the reader sends (an answer is cut at reader.MAX_ANSWER bytes;
# sizes in docs/performance.md, Remote hosts), with a margin.
MAX_LINE = 8 * 1024 * 1024
# How long a read waits for its answer (a host that takes longer is away for that read; the
# data layer's lane says "not responding" after its own, shorter, deadline).
ANSWER_TIMEOUT = 20.0
MAX_TEXT = 1_000_000  # a text or blob value of an answer (the reader cuts configs there too)
# How long a read waits, on a connection just made, for the host to say which databases it
# holds (a big tree takes a walk) before it fails as "not responding" and is made again later.
LISTED_WAIT = 5.0
INT_RANGE = range(-(2**63), 2**63)  # SQLite's integers
FIRST_DELAY = 1.0
MAX_DELAY = 60.0
JITTER = 0.2
WORKED_FOR = 10.0  # a connection up this long resets the delay
OVERDUE = 2 * reader.HEARTBEAT
REMOTE_STATES = ("waiting", "locked", "unreadable", "ok")
READY_LINE = READY.encode() + b"\n"


class BadData(ValueError):
    """Something the remote sent that is not what the protocol allows."""


class Truncated(BadData):
    """The stream ended inside a line."""


def check_int(value: Any, what: str) -> int:
    if type(value) is not int:
        raise BadData(f"{what} is not an integer")
    return value


def _cell(value: Any) -> Any:
    """One value of an answer, as SQLite could have given it (BadData otherwise)."""
    if value is None or type(value) is float or type(value) is str:
        return value[:MAX_TEXT] if type(value) is str else value
    if type(value) is int:
        if value not in INT_RANGE:
            raise BadData("an integer beyond SQLite's 64 bits")
        return value
    if isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b"), str):
        try:
            return bytes.fromhex(value["b"][: 2 * MAX_TEXT])
        except ValueError:
            raise BadData("a blob that is not hex") from None
    raise BadData("a value that is not one SQLite holds")


def decode_rows(rows: Any) -> list[tuple[Any, ...]]:
    """An answer's rows, checked: a list of lists of values (BadData otherwise)."""
    if not isinstance(rows, list):
        raise BadData("an answer whose rows are not a list")
    decoded = []
    for row in rows:
        if not isinstance(row, list):
            raise BadData("an answer row that is not a list")
        decoded.append(tuple(_cell(value) for value in row))
    return decoded


class _Waiter:
    """A request's answer, handed from the link's thread to the one that asked."""

    __slots__ = ("away", "done", "error", "rows")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.rows: Any = None
        self.error: str | None = None
        self.away = False

    def fail(self, why: str, away: bool) -> None:
        self.error, self.away = why, away
        self.done.set()


class Answer:
    """An answer's rows, as a cursor gives them."""

    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self.rows = rows

    def fetchall(self) -> list[Any]:
        return list(self.rows)

    def fetchone(self) -> Any:
        return self.rows[0] if self.rows else None


class RemoteConnection:
    """What the data layer reads a remote database through (files.Readable): each statement is
    answered by the host. It holds nothing open here; closing it is nothing."""

    def __init__(self, link: Link, place: tuple[int, str], timeout: float = ANSWER_TIMEOUT):
        self.link, self.place, self.timeout = link, place, timeout

    def execute(self, sql: str, parameters: Any = (), /) -> Rows:
        return Answer(self.link.ask(self.place, sql, _given(parameters), self.timeout))

    def execute_all(self, requests: Sequence[tuple[str, Any]]) -> list[list[Any]]:
        """Each statement's rows, asked at once (data.files.AsksAtOnce)."""
        asked = [(sql, _given(parameters)) for sql, parameters in requests]
        return list(self.link.ask_all(self.place, asked, self.timeout))

    def close(self) -> None:
        pass


class LinkState(StrEnum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    UNREACHABLE = "unreachable"
    REFUSED = "refused"
    UNREADABLE = "unreadable"


@dataclass(frozen=True, slots=True)
class LinkStatus:
    host: str
    state: LinkState
    since: datetime
    message: str = ""
    retry_at: float | None = None  # monotonic
    heard: float | None = None  # monotonic time of the last line

    def describe(self, now: float | None = None) -> str:
        """`node03: unreachable since 12:01:07, retrying in 8 s (Connection refused)`."""
        now = time.monotonic() if now is None else now
        text = f"{self.host}: {self.state}"
        if self.state is LinkState.CONNECTED:
            text += f", {self.lag(now)}"
        else:
            text += f" since {self.since:%H:%M:%S}"
        if self.retry_at is not None and self.state is not LinkState.CONNECTED:
            text += f", retrying in {max(0, round(self.retry_at - now))} s"
        if self.message:
            text += f" ({clean_text(self.message, 160)})"
        return text

    def lag(self, now: float) -> str:
        if self.heard is not None and now - self.heard > OVERDUE:
            return f"last heard {round(now - self.heard)} s ago"
        return "up to date"

    def to_json(self, now: float | None = None) -> dict[str, Any]:
        now = time.monotonic() if now is None else now
        return {
            "host": self.host,
            "state": str(self.state),
            "since": self.since.isoformat(timespec="seconds"),
            "seconds_since_heard": None if self.heard is None else round(now - self.heard, 1),
            "retry_in": None if self.retry_at is None else max(0, round(self.retry_at - now)),
            "message": clean_text(self.message, 160),
        }


class Link:
    """The connection to one host, for all of its sources."""

    def __init__(
        self,
        host: Host,
        sources: Sequence[RemoteSource],
        folders: Sequence[Path],
        python: str = "python3",
        options: SshOptions | None = None,
    ) -> None:
        self.host = host
        self.sources = list(sources)
        self.folders = list(folders)
        self.python = python
        self.options = options or SshOptions.from_env()
        for index, folder in enumerate(self.folders):
            source_names.register(folder, self.sources[index].label, host.label)
        self.stand_ins: dict[tuple[int, str], StandIn] = {}
        # Each stand-in's path, and the remote database it stands for: (spec, path).
        self.places: dict[Path, tuple[int, str]] = {}
        # What the reader says of each remote file or source: (spec, path) -> (state, why).
        self.remote_states: dict[tuple[int, str], tuple[str, str]] = {}
        # The remote states that are a database's (not a source's: a folder with none yet).
        self.database_states: set[tuple[int, str]] = set()
        self.status = LinkStatus(host.label, LinkState.CONNECTING, datetime.now())
        self.answers = 0  # requests answered
        self.wire_bytes = 0  # bytes read from ssh
        self.synced = threading.Event()
        # The current connection's host has said which databases it holds (its `synced`).
        self._listed = threading.Event()
        self.settled = threading.Event()  # synced, or a first connection ended without
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None
        self.process: launch.ReaderProcess | None = None
        self._feeder: threading.Thread | None = None
        self._started: launch.Started | None = None
        # The current reader is to be kept for the next command when this process ends
        # (launch.keep_at_exit), and, once the link is stopped, left running until then.
        self._keepable = False
        self._kept = False
        self._hello = threading.Event()  # the current reader said hello
        self._delay = FIRST_DELAY
        self.ready = False  # the remote shell answered (ssh.READY) in the current connection
        # Told of every change of state, from the link's thread (`tail -f` says it on stderr).
        self.on_change: Callable[[LinkStatus], None] | None = None
        self._announced: LinkState | None = None
        # The current connection's numbers for the databases, and the requests it has yet
        # to answer (each with the thread that waits for it).
        self._keys: dict[tuple[int, str], int] = {}
        self._requests: dict[int, _Waiter] = {}
        self._numbers = itertools.count(1)
        # Held while a line goes to the reader's stdin (the program first, then requests).
        self._write_lock = threading.Lock()

    # -- running ---------------------------------------------------------------------------

    def start(self) -> None:
        """Keep the link up in a thread of its own until `stop`."""
        if self.thread is None:
            self.thread = threading.Thread(
                target=self._run, name=f"velora-tui ssh {self.host.label}", daemon=True
            )
            self.thread.start()

    def stop(self, wait_for: float = 2.0) -> None:
        self.stopping.set()
        if self._keepable and self.status.state is LinkState.CONNECTED:
            # Handed to a keeper as this process ends: its thread reads on until then.
            self._kept = True
            return
        self._end_process()
        if self.thread is not None:
            self.thread.join(wait_for)

    def sync(self, timeout: float) -> LinkStatus:
        """Connect (the link keeps running from then on) and wait until the host has said
        which databases it holds, or the first connection failed, or `timeout`."""
        self.start()
        self.settled.wait(timeout)
        if not self.synced.is_set() and self.status.state is LinkState.CONNECTED:
            self._set(LinkState.UNREACHABLE, f"no answer within {timeout:g} s")
        return self.status

    def _run(self) -> None:
        while not self.stopping.is_set():
            began = time.monotonic()
            self.attempt()
            if self.stopping.is_set() or self.status.state is LinkState.REFUSED:
                self.settled.set()
                return
            if time.monotonic() - began >= WORKED_FOR:
                self._delay = FIRST_DELAY
            delay = self._delay * random.uniform(1 - JITTER, 1 + JITTER)
            self._delay = min(MAX_DELAY, self._delay * 2)
            with self.lock:
                self.status = _replace(self.status, retry_at=time.monotonic() + delay)
            self._announce()
            self.settled.set()
            if self.stopping.wait(delay):
                return

    def command(self, python: str | None = None) -> list[str]:
        """The ssh command: the same short line for every connection (see `program`)."""
        return launch.reader_command(self.host, python or self.python, self.options)

    def program(self) -> bytes:
        """What the reader's stdin begins with: its source, then its arguments (the sources)."""
        return launch.program([s.path for s in self.sources])

    def attempt(self, borrow: bool = True) -> None:
        """One connection, from start to end; the status says how it ended (any error too:
        a state and, in `_run`, a retry, never a thread that ends in silence). `borrow`: a
        reader kept by an earlier command may be used (launch.borrow)."""
        try:
            self._attempt(borrow)
        except Exception as exc:
            self._end_process()
            if not self.stopping.is_set():
                self._set(LinkState.UNREADABLE, f"an error here: {_describe(exc)}")
        finally:
            self._end_requests()

    def _attempt(self, borrow: bool = True) -> None:
        self.ready = False
        self._keepable = False
        self._listed.clear()
        hello = False
        failure: str | None = None
        running = launch.interpreter(self.host, self.python)
        try:
            # A cache folder for ssh's sockets that is not ours alone (FolderError) refuses
            # the command before ssh runs, as ssh that cannot be run does.
            argv, program = self.command(running), self.program()
            kept = launch.keeper_socket(self.command())
            started = launch.take(self.host, argv, program)
            if started is None and borrow:
                paths = [source.path for source in self.sources]
                started = launch.borrow(kept, argv, program, self._write_lock, paths)
            if started is None:
                started = launch.start(argv, program, self._write_lock)
            started.keeper = kept
        except OSError as exc:
            self._set(LinkState.REFUSED, f"cannot run ssh: {exc.strerror or exc}")
            return
        # A head start's program is written under its own lock: requests can only follow the
        # database numbers (`db`), which the reader says once it has read the whole program.
        process, errors = started.process, started.errors
        # A kept reader is past its shell's READY: it says hello again, after what the command
        # that used it last left unread.
        self.ready = started.again is not None
        self._hello.clear()
        if started.again is not None:
            # A kept reader whose link hangs (the network went away while it was kept) says
            # nothing: ended after AGAIN_WAIT, and a connection of our own made.
            overdue = threading.Timer(launch.AGAIN_WAIT, self._no_hello, (process,))
            overdue.daemon = True
            overdue.start()
        with errors:
            self.process, self._feeder, self._started = process, started.feeder, started
            if self.stopping.is_set():
                self._end_process()
            cut = False
            try:
                hello = self._read(process, started.again)
            except Truncated as exc:
                failure, cut, hello = str(exc), True, True
            except BadData as exc:
                failure = str(exc)
            finally:
                self._end_process()
            errors.seek(0)
            stderr = errors.read(65536).decode("utf-8", "replace")
        if self.stopping.is_set():
            return
        if started.again is not None and not hello:
            # The kept reader ended before it said hello again (its host went away while it
            # was kept): a connection of our own, at once.
            self._attempt(borrow=False)
            return
        if running != self.python and self.ready and not hello:
            # The host was reached but the interpreter remembered did not start a reader
            # (gone, replaced): forgotten, and the name the user gave tried at once.
            interpreters.forget(self.host, self.python)
            self._attempt()
            return
        reason = refusal(process.returncode, stderr, self.python)
        if cut and process.returncode == 255:  # ssh lost the connection mid-line: no fault
            failure = None
        if failure is not None:
            self._set(LinkState.UNREADABLE, failure)
        elif reason is not None and not hello:
            self._set(LinkState.REFUSED, reason)
        elif hello:
            self._set(LinkState.UNREACHABLE, "connection lost: " + (last_line(stderr) or "closed"))
        elif not self.ready:  # the remote shell never answered: ssh's own failure
            self._set(LinkState.UNREACHABLE, last_line(stderr) or "ssh failed")
        else:
            why = last_line(stderr) or f"exit status {process.returncode}"
            self._set(LinkState.UNREADABLE, f"the remote reader ended: {why}")

    def _no_hello(self, process: launch.ReaderProcess) -> None:
        if not self._hello.is_set():
            launch.end_process(process, None)

    def _end_process(self) -> None:
        if self.process is not None and not self._kept:
            launch.end_process(self.process, self._feeder)

    def _end_requests(self) -> None:
        """The connection ended: the requests it had yet to answer fail (read again later)."""
        with self.lock:
            self._keys = {}
            waiting, self._requests = self._requests, {}
        why = f"{self.host.label}: connection lost; read again when it is back"
        for waiter in waiting.values():
            waiter.fail(why, away=True)
        self._listed.set()  # a read waiting for the list goes on, and finds no database

    # -- requests --------------------------------------------------------------------------

    def ask(
        self, place: tuple[int, str], sql: str, parameters: Any, timeout: float = ANSWER_TIMEOUT
    ) -> list[tuple[Any, ...]]:
        """The rows of one statement, answered by the host (called from a database's lane).
        SourceAway while the host is not connected or does not answer in time;
        sqlite3.OperationalError with the host's words when its read failed there."""
        return self.ask_all(place, [(sql, parameters)], timeout)[0]

    def ask_all(
        self,
        place: tuple[int, str],
        requests: Sequence[tuple[str, Any]],
        timeout: float = ANSWER_TIMEOUT,
    ) -> list[list[tuple[Any, ...]]]:
        """The rows of each statement, all sent at once and answered in turn by the host (one
        round trip for all); fails as `ask` does, with the first that failed."""
        if place not in self._keys and self.status.state is LinkState.CONNECTED:
            # Connected again, and the host is still saying which databases it holds.
            self._listed.wait(min(timeout, LISTED_WAIT))
        with self.lock:
            key = self._keys.get(place)
            process = self.process
            if key is None or process is None or process.stdin is None:
                raise SourceAway(f"{self.status.describe()}; read again when it is connected")
            numbers = [next(self._numbers) for _ in requests]
            waiters = [_Waiter() for _ in requests]
            self._requests.update(zip(numbers, waiters, strict=True))
        try:
            lines = b"".join(
                json.dumps(
                    {"q": number, "k": key, "sql": sql, "p": parameters},
                    separators=(",", ":"),
                    default=str,
                ).encode("utf-8", "surrogatepass")
                + b"\n"
                for number, (sql, parameters) in zip(numbers, requests, strict=True)
            )
            if not self._write_lock.acquire(timeout=timeout):
                raise SourceAway(f"{self.host.label}: not reading requests")
            try:
                process.stdin.write(lines)
                process.stdin.flush()
            except (OSError, ValueError):
                raise SourceAway(f"{self.host.label}: connection lost") from None
            finally:
                self._write_lock.release()
            deadline = time.monotonic() + timeout
            for waiter in waiters:
                if not waiter.done.wait(max(0.0, deadline - time.monotonic())):
                    raise SourceAway(f"{self.host.label}: no answer within {timeout:g} s")
        finally:
            with self.lock:
                for number in numbers:
                    self._requests.pop(number, None)
        answers = []
        for waiter in waiters:
            if waiter.error is not None:
                if waiter.away:
                    raise SourceAway(waiter.error)
                raise sqlite3.OperationalError(waiter.error)
            try:
                answers.append(decode_rows(waiter.rows))
            except BadData as exc:
                raise sqlite3.OperationalError(f"the host's answer is not rows: {exc}") from None
        self.answers += len(answers)
        return answers

    # -- what the reader says ----------------------------------------------------------------

    def _read(self, process: launch.ReaderProcess, again: str | None = None) -> bool:
        """Handle the reader's lines until the connection ends (or it is kept for the next
        command); whether it said hello. `again`: the word a kept reader says hello with."""
        stream: IO[bytes] | None = process.stdout
        assert stream is not None
        keys: dict[int, tuple[int, str]] = {}
        hello = False
        while not self._kept:
            line = stream.readline(MAX_LINE + 1)
            if not line:
                return hello
            self.wire_bytes += len(line)
            if not self.ready:  # what a login script prints comes before it: not ours
                self.ready = line == READY_LINE
                continue
            if again is not None and not hello and not _says_again(line, again):
                continue  # what the last user of a kept reader left unread
            if not line.endswith(b"\n"):
                if len(line) > MAX_LINE:
                    raise BadData(f"a line longer than {MAX_LINE} bytes")
                raise Truncated("the connection ended in the middle of a line")
            try:
                message = json.loads(line)
            except ValueError:
                raise BadData(f"not a JSON line: {clean_text(line, 60)!r}") from None
            if not isinstance(message, dict):
                raise BadData("a line that is not a JSON object")
            kind = message.get("t")
            if not hello:
                if kind != "hello":
                    raise BadData(f"not velora-tui's reader: {clean_text(line, 60)!r}")
                if message.get("v") != reader.PROTOCOL:
                    version = clean_text(message.get("v"), 20)
                    raise BadData(f"protocol version {version}, expected {reader.PROTOCOL}")
                hello = True
                self._hello.set()
                interpreters.remember(self.host, self.python, message.get("exe"))
                self._set(LinkState.CONNECTED)
                continue
            with self.lock:
                self.status = _replace(self.status, heard=time.monotonic())
            self._handle(kind, message, keys)
            if kind == "synced":
                if not self._keepable and self._started is not None:
                    self._keepable = launch.keep_at_exit(self.host, self._started)
                self._listed.set()
                self.synced.set()
                self.settled.set()
        return hello

    def _handle(self, kind: Any, message: dict[str, Any], keys: dict[int, tuple[int, str]]) -> None:
        if kind == "a":
            number = check_int(message.get("n"), "n")
            with self.lock:
                waiter = self._requests.get(number)
            if waiter is None:
                return  # given up on (timed out): nobody waits for it
            error = message.get("error")
            if error is not None:
                waiter.fail(clean_text(error, 300), away=False)
                return
            waiter.rows = message.get("rows")
            waiter.done.set()
        elif kind == "v":
            place = keys.get(check_int(message.get("k"), "k"))
            if place is None:
                raise BadData("a change of a database never announced")
            self.stand_ins[place].changed()
        elif kind == "db":
            place = self._place(message)
            ident, entropy = message.get("ident"), message.get("entropy")
            if not isinstance(ident, str) or len(ident) > 200 or type(entropy) is not bool:
                raise BadData("a database without a proper identity")
            key = check_int(message.get("k"), "k")
            keys[key] = place
            with self.lock:
                self._keys[place] = key  # before the stand-in moves: its readers then ask
            self._stand_in(*place).start(ident, entropy)
            self.remote_states[place] = ("ok", "")
        elif kind == "state":
            place = self._place(message)
            state, why = message.get("state"), message.get("why")
            if state not in REMOTE_STATES:
                raise BadData("an unknown state")
            if "k" in message:
                self.database_states.add(place)
            self.remote_states[place] = (str(state), clean_text(why, 200))
        elif kind == "error":
            raise BadData(f"the remote reader: {clean_text(message.get('why'), 160)}")
        elif kind not in ("hb", "synced"):
            raise BadData(f"an unknown message {clean_text(kind, 20)!r}")

    def _place(self, message: dict[str, Any]) -> tuple[int, str]:
        spec, path = check_int(message.get("spec"), "spec"), message.get("path")
        if not 0 <= spec < len(self.sources):
            raise BadData("a source number out of range")
        if not isinstance(path, str) or not path or len(path) > MAX_PATH:
            raise BadData("a path that is not one")
        return spec, path

    def _stand_in(self, spec: int, path: str) -> StandIn:
        stand_in = self.stand_ins.get((spec, path))
        if stand_in is None:
            stand_in = self.stand_ins[(spec, path)] = StandIn(self.folders[spec], path)
            self.places[stand_in.path] = (spec, path)
            shown = clean_text(f"{self.host.label}:{path}", 300)
            source_names.register(stand_in.path, shown, self.host.label)
        return stand_in

    def place(self, spec: int, path: str) -> Path:
        """Where the stand-in of the database at `path` is, or will be (named `host:path`)."""
        return self._stand_in(spec, path).path

    def tell(self, on_change: Callable[[LinkStatus], None]) -> None:
        """Tell `on_change` of the state now (a link already connected by `sync`) and of
        every change from now on."""
        self.on_change = on_change
        self._announced = None
        self._announce()

    def _announce(self) -> None:
        status = self.status
        if self.on_change is not None and status.state is not self._announced:
            self._announced = status.state
            self.on_change(status)

    def _set(self, state: LinkState, message: str = "") -> None:
        with self.lock:
            old = self.status
            down = (LinkState.CONNECTING, LinkState.UNREACHABLE)
            same = old.state is state or (old.state in down and state in down)
            since = old.since if same else datetime.now()
            heard = time.monotonic() if state is LinkState.CONNECTED else old.heard
            self.status = LinkStatus(self.host.label, state, since, message, None, heard)
        if state in (LinkState.CONNECTED, LinkState.REFUSED):
            self._announce()


def _says_again(line: bytes, token: str) -> bool:
    """Whether `line` is a kept reader's hello to this user (launch.borrow)."""
    if not line.endswith(b"\n") or b'"again"' not in line:
        return False
    try:
        message = json.loads(line)
    except ValueError:
        return False
    if not isinstance(message, dict):
        return False
    return message.get("t") == "hello" and message.get("again") == token


def _given(parameters: Any) -> Any:
    """A statement's parameters as JSON carries them: an object, or a list."""
    return dict(parameters) if isinstance(parameters, Mapping) else list(parameters)


def _describe(exc: BaseException) -> str:
    """An unforeseen error, for the status line: its kind and its text."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _replace(status: LinkStatus, **changes: Any) -> LinkStatus:
    from dataclasses import replace

    return replace(status, **changes)
