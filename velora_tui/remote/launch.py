"""How the remote reader starts on a host, and a head start for it.

The ssh command line is a constant bootstrap (BOOTSTRAP): the reader's source and its arguments
follow on the reader's stdin (`program`), so `ps` on the host shows a short command.

A command named with a remote source spends most of its first half second here importing what
it will read with, and a fresh ssh session there (the remote login shell's start-up files, the
remote Python) takes as long again. `head_start`, called before the command's module is
imported, runs the ssh command and writes the program at once, so that both happen together;
the link to that host (link.py) then takes that process (`take`) instead of starting its own,
if and only if its command and program are the very same bytes. A head start nobody takes
(a usage error, another --remote-python) is ended at exit, like any connection of ours.

A command's readers outlive it (keep_readers, keep_at_exit): as it ends, each healthy one is
handed to a keeper process (keeper.py), and the next command's head start, or link, borrows it
(`borrow`) instead of starting ssh: it sends its own sources and a word of its own (`again`),
and reads on from the reader's hello with that word.

Only the words a command takes as SOURCE are looked at: the words of its options that take a
value (VALUE_OPTIONS, checked against the commands by a test) are skipped, so no other word
ever makes a connection. This module imports only the standard library and the two light
modules that say what a remote source is and how ssh is run.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol

from velora_tui.remote import interpreters
from velora_tui.remote.address import AddressError, Host, RemoteSource, parse_source
from velora_tui.remote.folders import FolderError
from velora_tui.remote.ssh import READY, SshOptions, control_dir, ssh_argv

# Run by the remote python: reads the reader's source (its length, a newline, the text), then
# runs it, which reads its arguments from the next line. Kept to what Python 2 and 3.0-3.7 can
# parse, so that they say why they are refused (ssh.refusal looks for "SyntaxError").
BOOTSTRAP = (
    "import sys;sys.version_info<(3,8)and sys.exit('SyntaxError: velora-tui needs Python 3.8');"
    "b=sys.stdin.buffer;n=int(b.readline());s=b.read(n);len(s)==n or sys.exit(2);"
    "exec(compile(s,'velora-tui-reader','exec'),{'__name__':'__main__'})"
)
DEFAULT_PYTHON = "python3"
SLURM = "slurm:"  # data/slurm.py says which words are Slurm sources; any of them stops here
READER = Path(__file__).with_name("reader.py")
KEEPER = Path(__file__).with_name("keeper.py")
# Seconds a command's reader is kept for the next command after its exit (keeper.py), as ssh
# keeps its shared connection (ssh.PERSIST); 0: not kept.
KEEP_ENV = "VELORA_TUI_KEEP"
KEEP = 60.0
BORROW_TIMEOUT = 0.5  # a keeper that does not answer within this is not used
AGAIN_WAIT = 5.0  # a kept reader that has not said hello again by then is ended (link.py)

# The options of the commands that read sources which take a value (every other option is a
# flag), so that their values are never taken for a source (tests/unit/test_launch.py holds
# this to the commands' own definitions).
VALUE_OPTIONS = frozenset(
    {
        "--exec",
        "--exec-timeout",
        "--experiment",
        "--format",
        "--group-by",
        "--lines",
        "--notify-with",
        "--output",
        "--remote-python",
        "--slurm-path",
        "--smoothing",
        "--target",
        "--x",
        "-e",
        "-n",
        "-o",
    }
)


def interpreter(host: Host, python: str) -> str:
    """What runs the reader on `host`: the interpreter `python` was there last time
    (interpreters.py), else `python` itself."""
    return interpreters.remembered(host, python) or python


def reader_command(host: Host, python: str, options: SshOptions) -> list[str]:
    """The ssh command that runs the reader with `python` (see `program`): a short line."""
    # -I -S: no site-packages, no PYTHON* variables (the reader needs the standard library
    # alone): the remote Python starts in half the time (docs/performance.md).
    return ssh_argv(host, [python, "-I", "-S", "-c", BOOTSTRAP], options)


def program(paths: Sequence[str]) -> bytes:
    """What the reader's stdin begins with: its source (for BOOTSTRAP), then its arguments on
    one line (the sources' paths on that host)."""
    arguments = json.dumps({"specs": list(paths)}, separators=(",", ":"))
    source = reader_source().encode("utf-8")
    return b"%d\n%s%s\n" % (len(source), source, arguments.encode("utf-8", "surrogatepass"))


_SOURCE: list[str] = []


def reader_source() -> str:
    """reader.py's text (read once)."""
    if not _SOURCE:
        _SOURCE.append(READER.read_text(encoding="utf-8"))
    return _SOURCE[0]


def feed(process: ReaderProcess, data: bytes, lock: threading.Lock) -> threading.Thread:
    """Write `data` to the process's stdin in a thread of its own: a remote that does not read
    it (not our reader) must not stop the thread that reads what it says."""
    stdin = process.stdin
    assert stdin is not None

    def write() -> None:
        with lock, contextlib.suppress(OSError, ValueError):  # ended, closed
            stdin.write(data)
            stdin.flush()

    feeder = threading.Thread(target=write, name="velora-tui feed", daemon=True)
    feeder.start()
    return feeder


def start(argv: list[str], data: bytes, lock: threading.Lock) -> Started:
    """The ssh process, its program on the way (OSError when ssh cannot be run)."""
    errors = tempfile.TemporaryFile()  # noqa: SIM115 (Started owns it: closed by end() or its taker)
    try:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errors,
            start_new_session=True,  # Ctrl-C in the terminal is ours to handle
        )
    except OSError:
        errors.close()
        raise
    return Started(argv, data, process, errors, feed(process, data, lock), lock)


class ReaderProcess(Protocol):
    """What runs the reader, as the link uses it: an ssh process (subprocess.Popen), or one a
    keeper lends (Borrowed)."""

    @property
    def pid(self) -> int: ...
    @property
    def stdin(self) -> IO[bytes] | None: ...
    @property
    def stdout(self) -> IO[bytes] | None: ...
    @property
    def returncode(self) -> int | None: ...
    def poll(self) -> int | None: ...
    def terminate(self) -> None: ...
    def kill(self) -> None: ...
    def wait(self, timeout: float | None = None) -> int: ...


@dataclass
class Started:
    """An ssh process running the reader, and what it was given."""

    argv: list[str]
    program: bytes = field(repr=False)
    process: ReaderProcess
    errors: IO[bytes]  # its stderr
    feeder: threading.Thread | None  # writing `program` (None: a kept reader has it)
    lock: threading.Lock  # held while something is written to its stdin
    # A kept reader's (borrow): the word it says hello again with, after what came before.
    again: str | None = None
    keeper: Path | None = None  # where its keeper listens, or will (keeper_socket)

    def end(self) -> None:
        end_process(self.process, self.feeder)
        self.errors.close()

    def release(self) -> None:
        """Not used after all: a borrowed reader goes back to its keeper, else it ends."""
        if isinstance(self.process, Borrowed):
            if self.feeder is not None:
                self.feeder.join(BORROW_TIMEOUT)  # its `again` written whole
            self.process.give_back(close=True)
            self.errors.close()
        else:
            self.end()


def end_process(process: ReaderProcess, feeder: threading.Thread | None) -> None:
    """Stop an ssh process running the reader (the reader ends when its stdin closes; ssh
    when told to)."""
    if process.poll() is not None:
        return
    if feeder is not None and feeder.is_alive():
        process.terminate()  # the write then fails at once: closing stdin waits for it
    with contextlib.suppress(OSError, ValueError):
        if process.stdin:
            process.stdin.close()
    process.terminate()
    try:
        process.wait(2)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# Host -> its head start, until a link takes it or the process ends.
_STARTED: dict[Host, Started] = {}
_LOCK = threading.Lock()


def head_start(words: Sequence[str], options: SshOptions | None = None) -> list[Started]:
    """Start the reader on each host that `words` (a reading command's arguments, after its
    name) name as a SOURCE; what was started. Never fails: a source that is refused, or an
    ssh that cannot run, is left to the command, which says why."""
    python, sources = _sources(words)
    by_host: dict[Host, list[str]] = {}
    for source in dict.fromkeys(sources):  # as Remotes orders them: once each, in order
        by_host.setdefault(source.host, []).append(source.path)
    started = []
    options = options or SshOptions.from_env()
    for host, paths in by_host.items():
        try:
            argv = reader_command(host, interpreter(host, python), options)
            data = program(paths)
            lock = threading.Lock()
            kept = keeper_socket(reader_command(host, python, options))
            early = borrow(kept, argv, data, lock, paths) or start(argv, data, lock)
        except (OSError, AddressError, FolderError):
            continue
        with _LOCK:
            early.keeper = kept
            if not _STARTED:
                atexit.register(end_all)
            old = _STARTED.pop(host, None)
            _STARTED[host] = early
        if old is not None:
            old.end()
        started.append(early)
    return started


def take(host: Host, argv: list[str], data: bytes) -> Started | None:
    """The head start on `host` if it runs exactly `argv` with `data`, for the caller to own;
    one that does not is ended (or given back to its keeper)."""
    with _LOCK:
        early = _STARTED.pop(host, None)
    if early is None:
        return None
    if early.argv != argv or early.program != data or early.process.poll() is not None:
        early.release()
        return None
    return early


def end_all() -> None:
    """End the head starts nobody took (a borrowed one goes back to its keeper)."""
    with _LOCK:
        left = list(_STARTED.values())
        _STARTED.clear()
    for early in left:
        early.release()


class Borrowed:
    """A kept reader's pipes (keeper.py), as the link uses an ssh process's: lent to this
    process until it ends, which gives them back, or until the link ends the reader."""

    def __init__(self, connection: socket.socket, pid: int, stdin: int, stdout: int) -> None:
        self.connection = connection
        self.pid = pid  # the ssh process's (no child of this process)
        self.stdin: IO[bytes] | None = os.fdopen(stdin, "wb")
        self.stdout: IO[bytes] | None = os.fdopen(stdout, "rb")
        self.returncode: int | None = None

    def poll(self) -> int | None:
        return self.returncode

    def terminate(self) -> None:
        """End the reader (the link found it broken, or ends it): its keeper ends with it."""
        if self.returncode is not None:
            return
        self.returncode = 0
        with contextlib.suppress(OSError):
            self.connection.sendall(b"e")
        self.connection.close()
        with contextlib.suppress(OSError, ValueError):
            if self.stdin is not None:
                self.stdin.close()  # the last of its stdin's writers: the reader ends
        # ssh itself, which a link that does not answer would keep waiting (its keepalives
        # give up after 45 s): it is no child of this process, so its command line says it
        # is still the one that ran a reader.
        with contextlib.suppress(OSError):
            if READY.encode() in Path(f"/proc/{self.pid}/cmdline").read_bytes():
                os.kill(self.pid, signal.SIGKILL)

    kill = terminate

    def wait(self, timeout: float | None = None) -> int:
        self.terminate()
        return 0

    def give_back(self, close: bool = False) -> None:
        """The keeper has it again: as this process ends (nothing of it reads the pipes), or
        `close`: its pipes closed here now (nothing else of this process uses them)."""
        self.connection.close()
        if close:
            for pipe in (self.stdin, self.stdout):
                with contextlib.suppress(OSError, ValueError):
                    if pipe is not None:
                        pipe.close()


def keeper_socket(argv: Sequence[str]) -> Path:
    """Where the keeper of a reader that `argv` runs listens, in the ssh sockets' folder (ours
    alone, a path short enough): one per host, ssh options and Python, whatever the sources
    (a borrower gives its own: `again`), and per version of the reader. `argv` names the
    Python as the user did (--remote-python), not as it was remembered: the same reader
    whichever started it."""
    digest = hashlib.sha256("\0".join(argv).encode("utf-8", "surrogateescape"))
    digest.update(b"\0" + reader_source().encode("utf-8"))
    return control_dir() / f"k-{digest.hexdigest()[:16]}"


def borrow(
    path: Path, argv: list[str], data: bytes, lock: threading.Lock, paths: Sequence[str]
) -> Started | None:
    """The reader the keeper at `path` (keeper_socket) holds, lent to this process and asked
    to start again on `paths` (the sources on that host: `again`) and say everything anew;
    None when there is none, or it is lent. `data`: the program it stands for (`take`)."""
    if not os.path.exists(path):
        return None
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    connection.settimeout(BORROW_TIMEOUT)
    try:
        connection.connect(str(path))
        connection.sendall(b"b")
        said, fds, _flags, _address = socket.recv_fds(connection, 32, 2)
    except OSError:
        connection.close()
        return None
    if not said.startswith(b"k") or not said[1:].isdigit() or len(fds) != 2:
        for fd in fds:
            os.close(fd)
        connection.close()
        return None
    connection.settimeout(None)
    process = Borrowed(connection, int(said[1:]), fds[0], fds[1])
    token = os.urandom(8).hex()
    # A line ending whatever the last borrower left half written, then the request.
    again = json.dumps({"again": token, "specs": list(paths)}, separators=(",", ":"))
    request = b"\n" + again.encode("utf-8", "surrogatepass") + b"\n"
    errors = tempfile.TemporaryFile()  # noqa: SIM115 (Started owns it, as start's)
    early = Started(argv, data, process, errors, None, lock, token, path)
    early.feeder = feed(process, request, lock)
    return early


# The readers to hand to a keeper when this process ends (keep_at_exit); the seconds to keep
# them, 0 until this process is a command that keeps its readers (keep_readers).
_KEPT: list[tuple[Host, Started]] = []
_KEEPING: list[float] = [0.0]


def keep_readers() -> None:
    """This process is a command run by the user: its readers are kept after it, for the next
    (KEEP seconds, or $VELORA_TUI_KEEP; 0: not kept)."""
    try:
        seconds = float(os.environ.get(KEEP_ENV, KEEP))
    except ValueError:
        seconds = KEEP
    _KEEPING[0] = max(0.0, min(seconds, 24 * 3600.0)) if seconds == seconds else KEEP


def keep_at_exit(host: Host, started: Started) -> bool:
    """Whether `started`'s reader is to be kept for the next command when this process ends
    (at `started.keeper`), if it still runs then (it is then not to be ended when its link
    stops)."""
    if _KEEPING[0] <= 0 or started.keeper is None or started.process.poll() is not None:
        return False
    with _LOCK:
        if not _KEPT:
            atexit.register(_hand_over_all)
        _KEPT.append((host, started))
    return True


def _hand_over_all() -> None:
    with _LOCK:
        kept = list(_KEPT)
        _KEPT.clear()
    for host, started in kept:
        if started.process.poll() is not None:
            continue  # ended by its link (the connection failed, or was made again)
        try:
            _hand_over(host, started)
        except OSError:
            started.end()


def _hand_over(host: Host, started: Started) -> None:
    """Give the reader back to its keeper, or start one for it."""
    process = started.process
    if isinstance(process, Borrowed):
        process.give_back()
        return
    if process.poll() is not None or process.stdin is None or process.stdout is None:
        started.end()
        return
    path = started.keeper
    assert path is not None  # keep_at_exit
    listener = _listen(path)
    if listener is None:  # another keeper has the same reader: this one is not needed
        started.end()
        return
    with listener:
        fds = (listener.fileno(), process.stdin.fileno(), process.stdout.fileno())
        keeper = [str(KEEPER), *map(str, fds), f"{_KEEPING[0]:g}", host.label, str(path)]
        keeper.append(str(process.pid))
        subprocess.Popen(
            [sys.executable, "-I", "-S", *keeper],
            pass_fds=fds,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # not the terminal's: this command has ended
            cwd="/",  # holds no folder of the user's (a mount to be unmounted) busy
        )


def _listen(path: Path) -> socket.socket | None:
    """A socket listening at `path` (ours: made before this process ends, so the next command
    finds it), or None when a keeper listens there already."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        try:
            listener.bind(str(path))
        except OSError:
            if _answers(path):
                listener.close()
                return None
            path.unlink(missing_ok=True)  # a keeper that was killed left it
            listener.bind(str(path))
        os.chmod(path, 0o600)  # in a folder of ours alone already
        listener.listen(8)
    except OSError:
        listener.close()
        raise
    return listener


def _answers(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(BORROW_TIMEOUT)
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


def kept_readers() -> list[dict[str, object]]:
    """What each keeper says of itself (`cache info`)."""
    found = []
    for path in _keeper_sockets():
        answer = _ask(path, b"i")
        with contextlib.suppress(ValueError):
            about = json.loads(answer)
            if isinstance(about, dict):
                found.append(about)
    return found


def end_kept_readers() -> int:
    """End every keeper (`cache clear`); how many there were."""
    return sum(_ask(path, b"e") == b"k" for path in _keeper_sockets())


def _keeper_sockets() -> list[Path]:
    try:
        folder = control_dir()
    except OSError:
        return []
    return sorted(folder.glob("k-*"))


def _ask(path: Path, what: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.settimeout(BORROW_TIMEOUT)
        try:
            connection.connect(str(path))
            connection.sendall(what)
            return connection.recv(4096)
        except OSError:
            return b""


def _sources(words: Sequence[str]) -> tuple[str, list[RemoteSource]]:
    """The Python to run there (--remote-python) and the remote sources among `words`."""
    python = DEFAULT_PYTHON
    sources: list[RemoteSource] = []
    positional_only = False
    index = 0
    while index < len(words):
        word = words[index]
        index += 1
        if not positional_only and word == "--":
            positional_only = True
            continue
        if not positional_only and word.startswith("-") and word != "-":
            name, value, takes = _option(word)
            if takes and value is None:
                value = words[index] if index < len(words) else ""
                index += 1
            if name == "--remote-python" and value:
                python = value
            continue
        if word.startswith(SLURM):
            return python, []  # a Slurm command (data/slurm.py): its hosts are reached otherwise
        try:
            found = parse_source(word)
        except AddressError:
            continue
        if found:
            sources.extend(found)
    return python, sources


def _option(word: str) -> tuple[str, str | None, bool]:
    """An option word as click reads it: (its name, its value if the word holds it, whether it
    takes a value). `--name=value`; `-n5`; `-fn` (flags, then one that takes the next word)."""
    if word.startswith("--"):
        name, equals, value = word.partition("=")
        return name, (value if equals else None), name in VALUE_OPTIONS
    for position in range(1, len(word)):
        name = "-" + word[position]
        if name in VALUE_OPTIONS:
            rest = word[position + 1 :]
            return name, (rest or None), True
    return word, None, False
