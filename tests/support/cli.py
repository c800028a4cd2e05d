"""The command line in the tests: a command run to completion (`run_cli`, its `Result`), a
process's output read line by line as it comes (`Lines`), and the checks every output passes
(no traceback, no escape sequence; JSON as the spec defines it)."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest

from tests.support.processes import Spawn, child_env, python_command, with_open_files

TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class Result:
    code: int
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()

    @property
    def err_lines(self) -> list[str]:
        return self.err.splitlines()


def check_output(*texts: str) -> None:
    for text in texts:
        assert "Traceback" not in text, text
        assert "\x1b" not in text, text


def run_cli(*args: str | Path, cwd: Path | None = None) -> Result:
    """Run the command to completion (with a timeout); its output must be clean."""
    proc = subprocess.run(
        python_command(*args),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=TIMEOUT,
        env=child_env(),
        cwd=cwd,
    )
    result = Result(
        proc.returncode,
        proc.stdout.decode("utf-8", "replace"),
        proc.stderr.decode("utf-8", "replace"),
    )
    check_output(result.out, result.err)
    return result


def run_cli_with_files(files: int, *args: str | Path, timeout: float = TIMEOUT) -> Result:
    """`run_cli` with at most `files` open file descriptors (as under `ulimit -n FILES`)."""
    proc = subprocess.run(
        with_open_files(files, python_command(*args)),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=timeout,
        env=child_env(),
    )
    result = Result(
        proc.returncode,
        proc.stdout.decode("utf-8", "replace"),
        proc.stderr.decode("utf-8", "replace"),
    )
    check_output(result.out, result.err)
    return result


def strict_json(text: str) -> Any:
    """JSON as the spec defines it: NaN and Infinity are not numbers."""

    def refuse(constant: str) -> None:
        raise AssertionError(f"non-standard JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


class Lines:
    """A process's output stream read line by line in a thread, with timeouts."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.queue: queue.Queue[str | None] = queue.Queue()
        self.lines: list[str] = []
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream: IO[bytes]) -> None:
        for raw in iter(stream.readline, b""):
            self.queue.put(raw.decode("utf-8", "replace").rstrip("\n"))
        self.queue.put(None)

    def take(self, count: int, timeout: float = TIMEOUT) -> list[str]:
        """Wait until `count` lines in all have arrived."""
        deadline = time.monotonic() + timeout
        while len(self.lines) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"only {len(self.lines)} of {count} lines within {timeout} s")
            try:
                line = self.queue.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                pytest.fail(f"stream ended after {len(self.lines)} of {count} lines")
            self.lines.append(line)
        return self.lines

    def drain(self) -> list[str]:
        """The lines arrived so far, without waiting (None, the stream's end, left queued)."""
        while True:
            try:
                line = self.queue.get_nowait()
            except queue.Empty:
                return self.lines
            if line is None:
                self.queue.put(None)
                return self.lines
            self.lines.append(line)

    def until(self, wanted: str, timeout: float = TIMEOUT) -> list[str]:
        """Wait for the line `wanted`; the lines up to it and itself."""
        start = len(self.lines)
        while wanted not in self.lines[start:]:
            self.take(len(self.lines) + 1, timeout)
        return self.lines[start:]

    def first(self, wanted: str | Callable[[str], bool], timeout: float = TIMEOUT) -> str:
        """The first line (already read or still to come) that holds `wanted` (a text), or for
        which `wanted` (a test) holds."""
        if isinstance(wanted, str):
            text = wanted
            wanted = lambda line: text in line  # noqa: E731
        deadline = time.monotonic() + timeout
        checked = 0
        while True:
            for line in self.lines[checked:]:
                if wanted(line):
                    return line
            checked = len(self.lines)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"no such line within {timeout} s; got {self.lines}")
            try:
                arrived = self.queue.get(timeout=min(remaining, 0.1))
            except queue.Empty:
                continue
            if arrived is None:
                pytest.fail(f"stream ended; got {self.lines}")
            self.lines.append(arrived)

    def rest(self, timeout: float = TIMEOUT) -> list[str]:
        """Everything up to the end of the stream."""
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "stream did not end"
        while True:
            line = self.queue.get_nowait()
            if line is None:
                return self.lines
            self.lines.append(line)


def closed_pipe_run(spawn: Spawn, *args: str | Path, read_lines: int = 0) -> Result:
    """Run with stdout a pipe whose reader goes away (after `read_lines` lines)."""
    read_fd, write_fd = os.pipe()
    reader = os.fdopen(read_fd, "rb")
    if read_lines == 0:
        reader.close()
    writer = os.fdopen(write_fd, "wb")
    try:
        proc = spawn(python_command(*args), stdout=writer, stderr=subprocess.PIPE)
    finally:
        writer.close()
    if read_lines:
        for _ in range(read_lines):
            assert reader.readline()
        reader.close()
    assert proc.stderr is not None
    err = proc.stderr.read().decode("utf-8", "replace")
    code = proc.wait(TIMEOUT)
    check_output(err)
    return Result(code, "", err)
