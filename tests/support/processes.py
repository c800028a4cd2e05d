"""Processes the tests start: the command line's argv and environment, stopping a process, a
process on a pseudo-terminal (`Terminal`), and what a process is (`children`, `command_line`)."""

from __future__ import annotations

import bisect
import contextlib
import fcntl
import math
import os
import pty
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

from tests.support import PROJECT_ROOT

if TYPE_CHECKING:
    pass


def python_command(*args: str | Path) -> list[str]:
    """`python -m velora_tui ARGS...` with the interpreter running the tests."""
    return [sys.executable, "-m", "velora_tui", *(str(a) for a in args)]


# Runs argv[2:] with at most argv[1] open file descriptors (`ulimit -n`).
_FEW_FILES = (
    "import os, resource, sys; n = int(sys.argv[1]);"
    " resource.setrlimit(resource.RLIMIT_NOFILE, (n, n)); os.execv(sys.argv[2], sys.argv[2:])"
)


def with_open_files(files: int, command: Sequence[str]) -> list[str]:
    """`command` run with at most `files` open file descriptors (as under `ulimit -n FILES`)."""
    return [sys.executable, "-c", _FEW_FILES, str(files), *command]


def child_env(*, plain: bool = True, bytecode_cache: Path | None = None) -> dict[str, str]:
    """The environment for a child process: this checkout importable, no debug mode.

    `plain`: output meant to be read by a test (unbuffered lines, no colours). Off for a process
    timed as a user runs it (colours in a terminal cost time too).
    `bytecode_cache`: where the child writes and reuses its bytecode, even where
    PYTHONDONTWRITEBYTECODE is set (some sandboxes set it; every timed start would then
    recompile velora_tui's sources, which a user's installed copy never does).
    """
    env = dict(os.environ)
    env.pop("VELORA_TUI_DEBUG", None)
    # pytest-xdist's workers have COLUMNS=80 and LINES=24, which the child's size lookup
    # (shutil.get_terminal_size, Textual's) prefers to its terminal's real size.
    env.pop("COLUMNS", None)
    env.pop("LINES", None)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH", "")) if p
    )
    if plain:
        env["PYTHONUNBUFFERED"] = "1"
        env["NO_COLOR"] = "1"
    if bytecode_cache is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(bytecode_cache)
    return env


def stop_process(proc: subprocess.Popen[Any], grace: float = 5.0) -> int | None:
    """SIGTERM, then SIGKILL if it does not end within `grace` seconds; its pipes closed.

    Returns its exit code (None only if even SIGKILL did not end it within `grace`).
    """
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(grace)
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()
    return proc.returncode


def _controlling_terminal() -> None:
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Terminal:
    """A process on a pseudo-terminal; everything it writes is kept, with when it arrived.

    As over SSH: the process leads a session of its own with the terminal as its controlling
    one (it gets SIGHUP if the terminal goes away). `env` defaults to `child_env(plain=False)`
    with a colour terminal's TERM.
    """

    def __init__(
        self,
        command: Sequence[str],
        size: tuple[int, int] = (120, 40),
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.master, slave = pty.openpty()
        columns, rows = size
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        base = child_env(plain=False) if env is None else dict(env)
        self.started = time.perf_counter()  # just before the process is created
        self.proc = subprocess.Popen(
            command,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=base | {"TERM": "xterm-256color", "COLORTERM": "truecolor"},
            preexec_fn=_controlling_terminal,
        )
        os.close(slave)
        self.output = bytearray()
        # (perf_counter() at a chunk's arrival, length of the output with it), in order.
        self.arrivals: list[tuple[float, int]] = []
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                return
            if not chunk:
                return
            now = time.perf_counter()
            with self.lock:
                self.output += chunk
                self.arrivals.append((now, len(self.output)))

    def mark(self) -> int:
        with self.lock:
            return len(self.output)

    def find(self, text: str, start: int = 0) -> int:
        """Offset of `text` in the output, searched from about `start` (-1: not there yet)."""
        wanted = text.encode()
        with self.lock:
            return self.output.find(wanted, max(0, start - len(wanted)))

    def arrived(self, offset: int) -> float:
        """perf_counter() when the output's byte at `offset` arrived (NaN: not yet)."""
        with self.lock:
            index = bisect.bisect_right(self.arrivals, offset, key=lambda arrival: arrival[1])
            return self.arrivals[index][0] if index < len(self.arrivals) else math.nan

    def shown_at(self, text: str, start: int = 0) -> float:
        """perf_counter() when `text` had wholly arrived (NaN: not yet)."""
        offset = self.find(text, start)
        return math.nan if offset < 0 else self.arrived(offset + len(text.encode()) - 1)

    def wait_for(self, text: str, start: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.find(text, start) >= 0:
                return True
            time.sleep(0.001)
        return False

    def key(self, keys: str, answer: str, timeout: float = 5.0) -> float:
        """Seconds from writing `keys` to `answer` appearing in the output (inf if never)."""
        start = self.mark()
        sent = time.perf_counter()
        os.write(self.master, keys.encode())
        if self.wait_for(answer, start, timeout):
            return time.perf_counter() - sent
        return float("inf")

    def close(self) -> int | None:
        code = stop_process(self.proc)
        os.close(self.master)
        self.reader.join(timeout=2)
        return code


class Spawn(Protocol):
    def __call__(
        self,
        args: Sequence[str | Path],
        *,
        stdout: int | IO[Any] | None = ...,
        stderr: int | IO[Any] | None = ...,
        cwd: Path | None = ...,
    ) -> subprocess.Popen[bytes]: ...


class Simulator(Protocol):
    def __call__(
        self,
        db: Path,
        *,
        episodes: int = ...,
        rate: float = ...,
        experiments: int = ...,
        extra: Sequence[str] = ...,
    ) -> subprocess.Popen[bytes]: ...
