"""One connection per host: ssh runs the remote reader (reader.py) for every source on that host,
and what it sends is checked and stored in the local copies (mirror.py).

States: connecting, connected (with how far behind: episodes the reader has yet to send, or the
age of the last word when it is overdue), unreachable (since when, retrying in N s: the delay
doubles from 1 s to 60 s, with jitter, and starts again from 1 s after a connection that
worked), refused (authentication refused, host key changed, unknown host, no python3: trying
again cannot help, so it does not), unreadable (the remote sent something that is not the
protocol, or its reader died, or storing what it sent failed here: tried again as an
unreachable host is).

Any error while a link runs ends that connection in a state (unreadable, with the error's text)
and a retry, never in a dead thread: what cannot be stored of one database (rows the copy
cannot hold, such as an id beyond SQLite's 64 bits) is that database's state, and the link
goes on with the others.

The remote command line is a constant bootstrap (BOOTSTRAP): the reader's source and its
arguments (the sources, and where each copy ends, which for thousands of databases pass
Linux's 128 KiB limit on one argument) follow on the reader's stdin, not visible in `ps`.

Nothing from the remote reaches the terminal unclean (values.clean_text), and no line, however
long or malformed, stops anything but this link.
"""

from __future__ import annotations

import contextlib
import json
import random
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import IO, Any

from velora_tui.data.cleaning import clean_text
from velora_tui.data.source_names import source_names
from velora_tui.remote import reader
from velora_tui.remote.address import Host, RemoteSource
from velora_tui.remote.mirror import (
    MAX_PATH,
    BadData,
    BadRows,
    Mirror,
    OpenCopies,
    check_int,
)
from velora_tui.remote.ssh import READY, SshOptions, last_line, refusal, ssh_argv

# Room for the largest message the reader sends (a rows message of reader.ROWS episodes, a
# config of up to 1 MB; sizes in docs/performance.md, Remote hosts), with a wide margin.
MAX_LINE = 8 * 1024 * 1024
FIRST_DELAY = 1.0
MAX_DELAY = 60.0
JITTER = 0.2
WORKED_FOR = 10.0  # a connection up this long resets the delay
OVERDUE = 2 * reader.HEARTBEAT
REMOTE_STATES = ("waiting", "locked", "unreadable", "ok")
READY_LINE = READY.encode() + b"\n"
# Run by the remote python: reads the reader's source (its length, a newline, the text), then
# runs it, which reads its arguments from the next line. Kept to what Python 2 and 3.0-3.7 can
# parse, so that they say why they are refused (ssh.refusal looks for "SyntaxError").
BOOTSTRAP = (
    "import sys;sys.version_info<(3,8)and sys.exit('SyntaxError: velora-tui needs Python 3.8');"
    "b=sys.stdin.buffer;n=int(b.readline());s=b.read(n);len(s)==n or sys.exit(2);"
    "exec(compile(s,'velora-tui-reader','exec'),{'__name__':'__main__'})"
)


class Truncated(BadData):
    """The stream ended inside a line."""


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
    behind: int = 0  # episodes the reader has yet to send
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
        if self.behind:
            return f"{self.behind} episodes behind"
        if self.heard is not None and now - self.heard > OVERDUE:
            return f"last heard {round(now - self.heard)} s ago"
        return "up to date"

    def to_json(self, now: float | None = None) -> dict[str, Any]:
        now = time.monotonic() if now is None else now
        return {
            "host": self.host,
            "state": str(self.state),
            "since": self.since.isoformat(timespec="seconds"),
            "behind_episodes": self.behind,
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
        self.copies = OpenCopies()  # the copies' open connections, a bounded number
        self.mirrors: dict[tuple[int, str], Mirror] = {}
        for index, folder in enumerate(self.folders):
            source_names.register(folder, self.sources[index].label, host.label)
            for mirror in Mirror.existing(folder, self.copies):
                self._keep(index, mirror)
        # What the reader says of each remote file or source: (spec, path) -> (state, why).
        self.remote_states: dict[tuple[int, str], tuple[str, str]] = {}
        # The remote states that are a database's (not a source's: a folder with none yet).
        self.database_states: set[tuple[int, str]] = set()
        # Databases whose rows the copy cannot hold, with why: their rows are left aside until
        # the reader announces them anew (the next connection, or the file replaced).
        self.refused_rows: dict[tuple[int, str], str] = {}
        self.status = LinkStatus(host.label, LinkState.CONNECTING, datetime.now())
        self.received = 0  # episodes stored
        self.wire_bytes = 0  # bytes read from ssh
        self.synced = threading.Event()
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self._feeder: threading.Thread | None = None
        self._delay = FIRST_DELAY
        self.ready = False  # the remote shell answered (ssh.READY) in the current connection
        # Told of every change of state, from the link's thread (`tail -f` says it on stderr).
        self.on_change: Callable[[LinkStatus], None] | None = None
        self._announced: LinkState | None = None

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
        self._end_process()
        if self.thread is not None:
            self.thread.join(wait_for)
            if self.thread.is_alive():
                return  # still storing a message: the process's end closes its files
        for mirror in list(self.mirrors.values()):
            mirror.close()

    def sync(self, timeout: float) -> LinkStatus:
        """Bring the copies up to what the host holds now (one connection; no retry)."""
        timer = threading.Timer(timeout, self._end_process)
        timer.daemon = True
        timer.start()
        try:
            self.attempt(once=True)
        finally:
            timer.cancel()
        if not self.synced.is_set() and self.status.state is LinkState.CONNECTED:
            self._set(LinkState.UNREACHABLE, f"no answer within {timeout:g} s")
        return self.status

    def _run(self) -> None:
        while not self.stopping.is_set():
            began = time.monotonic()
            self.attempt(once=False)
            if self.stopping.is_set() or self.status.state is LinkState.REFUSED:
                return
            if time.monotonic() - began >= WORKED_FOR:
                self._delay = FIRST_DELAY
            delay = self._delay * random.uniform(1 - JITTER, 1 + JITTER)
            self._delay = min(MAX_DELAY, self._delay * 2)
            with self.lock:
                self.status = _replace(self.status, retry_at=time.monotonic() + delay)
            self._announce()
            if self.stopping.wait(delay):
                return

    def command(self) -> list[str]:
        """The ssh command: the same short line for every connection (see `program`)."""
        return ssh_argv(self.host, [self.python, "-c", BOOTSTRAP], self.options)

    def program(self, once: bool) -> bytes:
        """What the reader's stdin begins with: its source (for BOOTSTRAP), then its arguments
        on one line (the sources, and where each copy ends: one resume position each)."""
        starts = {
            mirror.remote_path: [
                mirror.position.ident,
                mirror.position.last_experiment,
                mirror.position.last_episode,
            ]
            for mirror in self.mirrors.values()
            if mirror.position is not None
        }
        arguments = json.dumps(
            {"specs": [s.path for s in self.sources], "from": starts, "once": once},
            separators=(",", ":"),
        )
        source = reader_source().encode("utf-8")
        return b"%d\n%s%s\n" % (len(source), source, arguments.encode("utf-8", "surrogatepass"))

    def attempt(self, once: bool) -> None:
        """One connection, from start to end; the status says how it ended (any error too:
        a state and, in `_run`, a retry, never a thread that ends in silence)."""
        try:
            self._attempt(once)
        except Exception as exc:
            self._end_process()
            if not self.stopping.is_set():
                self._set(LinkState.UNREADABLE, f"an error here: {_describe(exc)}")

    def _attempt(self, once: bool) -> None:
        self.ready = False
        if once:
            self.synced.clear()
        hello = False
        failure: str | None = None
        with tempfile.TemporaryFile() as errors:
            try:
                process = subprocess.Popen(
                    self.command(),
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=errors,
                    start_new_session=True,  # Ctrl-C in the terminal is ours to handle
                )
            except OSError as exc:
                self._set(LinkState.REFUSED, f"cannot run ssh: {exc.strerror or exc}")
                return
            self.process = process
            self._feed(process, self.program(once))
            if self.stopping.is_set():
                self._end_process()
            cut = False
            try:
                hello = self._read(process, once)
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
        reason = refusal(process.returncode, stderr, self.python)
        if cut and process.returncode == 255:  # ssh lost the connection mid-line: no fault
            failure = None
        if failure is not None:
            self._set(LinkState.UNREADABLE, failure)
        elif reason is not None and not hello:
            self._set(LinkState.REFUSED, reason)
        elif once and self.synced.is_set():
            return
        elif hello:
            self._set(LinkState.UNREACHABLE, "connection lost: " + (last_line(stderr) or "closed"))
        elif not self.ready:  # the remote shell never answered: ssh's own failure
            self._set(LinkState.UNREACHABLE, last_line(stderr) or "ssh failed")
        else:
            why = last_line(stderr) or f"exit status {process.returncode}"
            self._set(LinkState.UNREADABLE, f"the remote reader ended: {why}")

    def _feed(self, process: subprocess.Popen[bytes], program: bytes) -> None:
        """Write the reader's program to its stdin in a thread of its own: a remote that does
        not read it (not our reader) must not stop this thread from reading what it says."""
        stdin = process.stdin
        assert stdin is not None

        def write() -> None:
            with contextlib.suppress(OSError, ValueError):  # the remote ended (EPIPE), closed
                stdin.write(program)
                stdin.flush()

        feeder = threading.Thread(target=write, name=f"velora-tui feed {self.host.label}")
        feeder.daemon = True
        feeder.start()
        self._feeder = feeder

    def _end_process(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        feeder = self._feeder
        if feeder is not None and feeder.is_alive():
            process.terminate()  # the write then fails at once: closing stdin waits for it
        with contextlib.suppress(OSError, ValueError):
            if process.stdin:
                process.stdin.close()  # the reader ends when its stdin closes
        process.terminate()
        try:
            process.wait(2)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _read(self, process: subprocess.Popen[bytes], once: bool) -> bool:
        """Handle the reader's lines until the connection ends; whether it said hello."""
        stream: IO[bytes] | None = process.stdout
        assert stream is not None
        keys: dict[int, tuple[tuple[int, str], Mirror]] = {}
        hello = False
        while True:
            line = stream.readline(MAX_LINE + 1)
            if not line:
                return hello
            self.wire_bytes += len(line)
            if not self.ready:  # what a login script prints comes before it: not ours
                self.ready = line == READY_LINE
                continue
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
                self._set(LinkState.CONNECTED)
                continue
            with self.lock:
                self.status = _replace(self.status, heard=time.monotonic())
            self._handle(kind, message, keys)
            if kind == "synced":
                self.synced.set()
                if once:
                    return hello

    def _handle(
        self, kind: Any, message: dict[str, Any], keys: dict[int, tuple[tuple[int, str], Mirror]]
    ) -> None:
        if kind == "rows":
            known = keys.get(check_int(message.get("k"), "k"))
            if known is None:
                raise BadData("rows of a database never announced")
            place, mirror = known
            experiments, episodes = message.get("x"), message.get("e")
            if not isinstance(experiments, list) or not isinstance(episodes, list):
                raise BadData("rows that are not lists")
            if place in self.refused_rows:
                return  # the copy stops at the rows it could not hold: none after them
            try:
                self.received += mirror.apply(experiments, episodes)
            except BadRows as exc:
                self.refused_rows[place] = str(exc)
                self.remote_states[place] = ("unreadable", str(exc))
                return
            left = message.get("left")
            with self.lock:
                behind = left if type(left) is int and left >= 0 else 0
                self.status = _replace(self.status, behind=behind)
        elif kind == "db":
            spec, path = self._place(message)
            ident, entropy = message.get("ident"), message.get("entropy")
            if not isinstance(ident, str) or len(ident) > 200 or type(entropy) is not bool:
                raise BadData("a database without a proper identity")
            mirror = self.mirrors.get((spec, path)) or Mirror(self.folders[spec], path, self.copies)
            mirror.start(ident, entropy, message.get("reset") is True)
            self._keep(spec, mirror)
            keys[check_int(message.get("k"), "k")] = ((spec, path), mirror)
            self.refused_rows.pop((spec, path), None)
            self.remote_states[(spec, path)] = ("ok", "")
        elif kind == "state":
            spec, path = self._place(message)
            state, why = message.get("state"), message.get("why")
            if state not in REMOTE_STATES:
                raise BadData("an unknown state")
            refused = self.refused_rows.get((spec, path))
            if refused is not None and state == "ok":
                state, why = "unreadable", refused  # its copy still cannot hold its rows
            if "k" in message:
                self.database_states.add((spec, path))
            self.remote_states[(spec, path)] = (str(state), clean_text(why, 200))
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

    def place(self, spec: int, path: str) -> Path:
        """Where the copy of the database at `path` is, or will be (named as `host:path`)."""
        mirror = self.mirrors.get((spec, path))
        if mirror is not None:
            return mirror.path
        place = Mirror(self.folders[spec], path, self.copies).path
        source_names.register(place, clean_text(f"{self.host.label}:{path}", 300), self.host.label)
        return place

    def _keep(self, spec: int, mirror: Mirror) -> None:
        self.mirrors[(spec, mirror.remote_path)] = mirror
        shown = clean_text(f"{self.host.label}:{mirror.remote_path}", 300)
        source_names.register(mirror.path, shown, self.host.label)

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
            self.status = LinkStatus(
                self.host.label, state, since, message, None, old.behind, heard
            )
        if state in (LinkState.CONNECTED, LinkState.REFUSED):
            self._announce()


def _describe(exc: BaseException) -> str:
    """An unforeseen error, for the status line: its kind and its text."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _replace(status: LinkStatus, **changes: Any) -> LinkStatus:
    from dataclasses import replace

    return replace(status, **changes)


_SOURCE: list[str] = []


def reader_source() -> str:
    """reader.py's text, sent to the host over stdin (read once)."""
    if not _SOURCE:
        _SOURCE.append(Path(reader.__file__).read_text(encoding="utf-8"))
    return _SOURCE[0]
