"""The file system calls the data layer makes on a source, in one place.

Each may block in the kernel for as long as the file system does not answer (a dead NFS or
Lustre server): they are only ever made in a source's lane (deadline_lanes.py). The tests put a
double in their place that blocks until released, as a dead server would
(tests/support/hanging_fs.py), and pass it to the Monitor (or set `SYSTEM` in a child process).

Only a regular file is ever opened as a database. The kind of a path is asked of `stat` first;
a FIFO's `open` waits for a writer (forever), a terminal's may make it the process's
controlling terminal, and a device, a socket or a directory holds no database anyway.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import secrets
import sqlite3
import stat
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any, Protocol, TypeVar, runtime_checkable

from velora_tui.data.connection import connect_readonly

T = TypeVar("T")

_KINDS = (
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISDIR, "a directory"),
)


class Rows(Protocol):
    def fetchall(self) -> list[Any]: ...

    def fetchone(self) -> Any: ...


class Readable(Protocol):
    """What the data layer reads a database through: a read-only SQLite connection here, or
    one whose statements a remote host answers (remote/link.py)."""

    def execute(self, sql: str, parameters: Any = (), /) -> Rows: ...

    def close(self) -> None: ...


@runtime_checkable
class AsksAtOnce(Protocol):
    """A Readable whose host takes several statements at once and answers each in turn (one
    round trip for all of them, each still a short read there: remote/link.py)."""

    def execute_all(self, requests: Sequence[tuple[str, Any]]) -> list[list[Any]]: ...


class SourceAway(sqlite3.OperationalError):
    """The database's host is not connected now (its link retries): the source keeps what it
    read, says why, and is read again as soon as its host is back."""


class NotRegular(Exception):
    """The path is not a regular file, so it is not opened (what it is: the message)."""


def kind_of(mode: int) -> str | None:
    """What a path of this mode is, if not a regular file (None for a regular file)."""
    if stat.S_ISREG(mode):
        return None
    return next((name for test, name in _KINDS if test(mode)), "of an unknown kind")


def not_regular(mode: int) -> NotRegular | None:
    kind = kind_of(mode)
    return None if kind is None else NotRegular(f"not a regular file: {kind}")


def is_link_loop(exc: OSError) -> bool:
    return exc.errno == errno.ELOOP


class FileSystem:
    """The real calls. Every method may block as long as the file system does."""

    def far(self, path: Path) -> bool:
        """Whether the database at `path` is read across a link (each answer costs bytes
        there), so that reads of it ask for fewer rows where fewer do (series.FAR_POINTS)."""
        return False

    def stat(self, path: Path) -> os.stat_result:
        return os.stat(path)

    def open(self, path: Path) -> int:
        """A file descriptor of `path`, which must be a regular file (NotRegular otherwise:
        it may have been replaced since it was looked at). Opened without waiting for a
        writer (O_NONBLOCK: a FIFO's open would) and never as a controlling terminal."""
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY)
        try:
            problem = not_regular(os.fstat(fd).st_mode)
            if problem is not None:
                raise problem
            flags = fcntl.fcntl(fd, fcntl.F_GETFL)
            fcntl.fcntl(fd, fcntl.F_SETFL, flags & ~os.O_NONBLOCK)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def read(self, fd: int, size: int, offset: int) -> bytes:
        return os.pread(fd, size, offset)

    def close(self, fd: int) -> None:
        os.close(fd)

    def connect(self, path: Path, busy_timeout: float) -> Readable:
        """The read-only connection (SQLite makes its own calls on the file through it)."""
        return connect_readonly(path, busy_timeout)

    def listdir(self, path: Path) -> list[tuple[str, bool]]:
        """The names in a directory, each with whether it is a directory itself; a symbolic
        link is not followed (its target may be on a file system that does not answer)."""
        with os.scandir(path) as entries:
            return [(entry.name, entry.is_dir(follow_symlinks=False)) for entry in entries]

    def watch(self, paths: Sequence[Path], make: Callable[[], T]) -> T:
        """Make a file watcher of `paths` (adding a watch looks each path up, and a recursive
        one walks the tree below it)."""
        return make()


SYSTEM = FileSystem()


def system() -> FileSystem:
    """The calls sources use unless given others (looked up at each use: a child process run
    by a test may put a double here before it starts)."""
    return SYSTEM


# -- files the app writes (not a source's: its exports and screenshots, in the output folder) --


@contextlib.contextmanager
def new_output(path: Path) -> Iterator[IO[str]]:
    """A text file to write at `path` (an export, a screenshot): written into a new file of a
    random name beside it, opened with O_EXCL | O_NOFOLLOW, then renamed to `path`. Nothing is
    ever opened through a symbolic link: the working folder may be shared, and a link planted
    under a name the app writes (names are predictable) would have it overwrite the link's
    target. A `path` that is a symbolic link is refused (OSError, its strerror says why); a
    rename replaces a link planted after that check, never what it points to."""
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISLNK(os.lstat(path).st_mode):
            raise OSError(errno.ELOOP, "it is a symbolic link, not written through", str(path))
    part = path.with_name(f".{path.name}.{secrets.token_hex(6)}.part")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(part, flags, 0o666)  # the umask applies, as to any file the user writes
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as out:
            fd = -1  # closed with `out` from here on
            yield out
        os.replace(part, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(part)
        raise
