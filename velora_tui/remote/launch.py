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

Only the words a command takes as SOURCE are looked at: the words of its options that take a
value (VALUE_OPTIONS, checked against the commands by a test) are skipped, so no other word
ever makes a connection. This module imports only the standard library and the two light
modules that say what a remote source is and how ssh is run.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import subprocess
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from velora_tui.remote import interpreters
from velora_tui.remote.address import AddressError, Host, RemoteSource, parse_source
from velora_tui.remote.folders import FolderError
from velora_tui.remote.ssh import SshOptions, ssh_argv

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


def feed(process: subprocess.Popen[bytes], data: bytes, lock: threading.Lock) -> threading.Thread:
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


@dataclass
class Started:
    """An ssh process running the reader, and what it was given."""

    argv: list[str]
    program: bytes = field(repr=False)
    process: subprocess.Popen[bytes]
    errors: IO[bytes]  # its stderr
    feeder: threading.Thread  # writing `program`
    lock: threading.Lock  # held while something is written to its stdin

    def end(self) -> None:
        end_process(self.process, self.feeder)
        self.errors.close()


def end_process(process: subprocess.Popen[bytes], feeder: threading.Thread | None) -> None:
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
            early = start(argv, program(paths), threading.Lock())
        except (OSError, AddressError, FolderError):
            continue
        with _LOCK:
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
    one that does not is ended."""
    with _LOCK:
        early = _STARTED.pop(host, None)
    if early is None:
        return None
    if early.argv != argv or early.program != data or early.process.poll() is not None:
        early.end()
        return None
    return early


def end_all() -> None:
    """End the head starts nobody took."""
    with _LOCK:
        left = list(_STARTED.values())
        _STARTED.clear()
    for early in left:
        early.end()


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
