"""A file system that stops answering, without root: a double of velora_tui.data.files.

A dead NFS or Lustre server makes `stat`, `open` and `read` wait in the kernel until it answers.
`HangingFiles` makes the calls the data layer makes on paths below one directory wait in the
kernel too: each first opens a FIFO (the `Gate`) for reading, which blocks until something holds
its other end open. The test holds it (`Gate.release`) or lets go (`Gate.hang`); the blocked
threads are real threads blocked in a real system call, as the monitor's would be on a dead
mount. The same double works in a child process (`HUNG_CLI` installs it before `velora-tui`
starts), where the test controls it through the same FIFO.

Which calls wait is chosen by name: "stat", "open", "read" (the header), "connect" (SQLite's
open), "query" (SQLite's own reads: a progress handler that waits while a statement runs, the
way a read stuck on the server holds SQLite mid-statement), "listdir" and "watch".
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Callable, Collection, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

from velora_tui.data.connection import connect_readonly
from velora_tui.data.files import FileSystem

T = TypeVar("T")

ALL_CALLS = frozenset({"stat", "open", "read", "connect", "query", "listdir", "watch"})
# SQLite calls the progress handler every this many virtual machine steps.
QUERY_STEPS = 5


class Gate:
    """A FIFO: opening it for reading waits (in the kernel) unless the gate is released."""

    def __init__(self, path: Path) -> None:
        self.path = path
        os.mkfifo(path)
        self._held: int | None = None

    @property
    def hung(self) -> bool:
        return self._held is None

    def release(self) -> None:
        """Every call waiting at the gate goes on, and later ones pass at once."""
        if self._held is None:
            # O_RDWR never waits on Linux (this end is its own reader).
            self._held = os.open(self.path, os.O_RDWR | os.O_NONBLOCK)

    def hang(self) -> None:
        """Calls wait at the gate from now on."""
        if self._held is not None:
            os.close(self._held)
            self._held = None

    @contextlib.contextmanager
    def open_for(self) -> Iterator[None]:
        """Released for the duration of a block (a test's setup), then hung again."""
        self.release()
        try:
            yield
        finally:
            self.hang()

    def close(self) -> None:
        """Release for good (the threads still waiting go on and end)."""
        self.release()


def pass_gate(gate: Path) -> None:
    """Wait at the gate: returns once something holds its other end open."""
    os.close(os.open(gate, os.O_RDONLY))


class HangingFiles(FileSystem):
    """The real calls, each on a path at or below `below` first waiting at the gate."""

    def __init__(self, gate: Path, below: Path, calls: Collection[str] = ALL_CALLS) -> None:
        unknown = set(calls) - ALL_CALLS
        assert not unknown, unknown
        self.gate = gate
        self.below = below
        self.calls = frozenset(calls)
        self._fds: dict[int, Path] = {}

    def _wait(self, call: str, path: Path) -> None:
        if call in self.calls and (path == self.below or self.below in path.parents):
            pass_gate(self.gate)

    def stat(self, path: Path) -> os.stat_result:
        self._wait("stat", path)
        return super().stat(path)

    def open(self, path: Path) -> int:
        self._wait("open", path)
        fd = super().open(path)
        self._fds[fd] = path
        return fd

    def read(self, fd: int, size: int, offset: int) -> bytes:
        path = self._fds.get(fd)
        if path is not None:
            self._wait("read", path)
        return super().read(fd, size, offset)

    def close(self, fd: int) -> None:
        self._fds.pop(fd, None)
        super().close(fd)

    def connect(self, path: Path, busy_timeout: float) -> sqlite3.Connection:
        self._wait("connect", path)
        conn = connect_readonly(path, busy_timeout)

        def step() -> int:
            self._wait("query", path)
            return 0

        conn.set_progress_handler(step, QUERY_STEPS)
        return conn

    def listdir(self, path: Path) -> list[tuple[str, bool]]:
        self._wait("listdir", path)
        return super().listdir(path)

    def watch(self, paths: Sequence[Path], make: Callable[[], T]) -> T:
        for path in paths:
            self._wait("watch", path)
        return super().watch(paths, make)


# `velora-tui ARGS` in a child process whose sources below BELOW wait at GATE, its deadline
# DEADLINE seconds: `python -c HUNG_CLI GATE BELOW DEADLINE ARGS...`.
HUNG_CLI = """
import sys
from pathlib import Path

from tests.support.hanging_fs import HangingFiles
from velora_tui.data import deadline_lanes, files

gate, below, deadline, *args = sys.argv[1:]
files.SYSTEM = HangingFiles(Path(gate), Path(below))
deadline_lanes.DEADLINE = float(deadline)
from velora_tui.cli import entry

sys.argv = ["velora-tui", *args]
entry()
"""
