"""Finding the databases of a source: a metrics.db file as given, or every metrics.db below a
directory, walked in the source's lane (deadline_lanes.py) so that a file system that does not
answer holds up nothing else. The Monitor (monitor.py) asks; nothing here keeps state beyond a
walk under way.
"""

from __future__ import annotations

import stat
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

from velora_tui.data.deadline_lanes import answer
from velora_tui.data.files import FileSystem, system

DB_NAME = "metrics.db"
_SKIP_DIRS = {"node_modules", "__pycache__", "site-packages", ".git", ".venv", "venv"}
_SIDE_FILES = ("-journal", "-wal", "-shm")
# A root that could not be looked at in time: not watched until it answers (feed.py).
UNKNOWN_INODE = -2


def database_for(path: Path) -> Path:
    """The database a changed file belongs to (`metrics.db-journal` -> `metrics.db`)."""
    name = path.name
    for suffix in _SIDE_FILES:
        if name.endswith(suffix):
            return path.with_name(name[: -len(suffix)])
    return path


@dataclass(eq=False)
class Walk:
    """One walk of a directory tree for metrics.db files, in a lane; read while it runs."""

    root: Path
    skip: frozenset[Path] = frozenset()  # directories whose listing has not come back
    found: list[Path] = field(default_factory=list)
    current: Path | None = None  # the directory being listed now, since `since` (monotonic)
    since: float = 0.0
    stop: bool = False  # given up on: stop after the listing under way
    ended: threading.Event = field(default_factory=threading.Event)
    future: Future[None] | None = None
    started: float = 0.0  # monotonic, when the walk began listing (0.0: not yet)
    finished: float = 0.0  # monotonic, when it ended
    harvested: bool = False  # what it found has been handed to the Monitor

    @property
    def duration(self) -> float:
        """How long the walk took (wall time: what a file server sees too); 0.0 until it
        ends."""
        return max(0.0, self.finished - self.started) if self.finished else 0.0

    def stuck(self, now: float, deadline: float) -> bool:
        return self.current is not None and now - self.since >= deadline


def walk_tree(walk: Walk, files: FileSystem) -> None:
    """Every metrics.db below `walk.root` in `walk.found`, as os.walk would find them (top
    down, sorted, hidden and tool directories left out, symbolic links not followed), but
    each of any kind: what it is, a FIFO or a directory, is for its own stat to say. Nothing
    beyond a directory listing is asked: a symbolic link's target is never looked up here."""
    stack = [walk.root]
    skip = walk.skip
    walk.started = time.monotonic()
    try:
        while stack and not walk.stop:
            directory = stack.pop()
            walk.since = time.monotonic()  # before `current`: never a new one with an old time
            walk.current = directory
            try:
                entries = files.listdir(directory)
            except OSError:
                continue
            if walk.stop:
                return
            below = []
            for name, is_dir in entries:
                if name == DB_NAME:
                    walk.found.append(directory / name)
                elif is_dir and name not in _SKIP_DIRS and name[:1] != ".":
                    below.append(name)
            # Pushed last first: the first in sorted order is listed next (top down, sorted).
            below.sort(reverse=True)
            for name in below:
                path = directory / name
                if not skip or path not in skip:
                    stack.append(path)
    finally:
        walk.current = None
        walk.finished = time.monotonic()
        walk.ended.set()


def find_databases(root: Path, files: FileSystem | None = None) -> list[Path]:
    """Every metrics.db below `root`, in this thread (no deadline: see Monitor.discover)."""
    walk = Walk(root)
    walk_tree(walk, files if files is not None else system())
    return walk.found


def is_directory(files: FileSystem, path: Path) -> bool:
    try:
        return stat.S_ISDIR(files.stat(path).st_mode)
    except OSError:
        return False


def directory_inode(files: FileSystem, path: Path) -> int:
    """A directory's inode (-1: not there, or not a directory)."""
    try:
        st = files.stat(path)
    except OSError:
        return -1
    return st.st_ino if stat.S_ISDIR(st.st_mode) else -1


def finish_root_inodes(asked: Sequence[Future[int] | None]) -> list[int]:
    """The inodes that came back; UNKNOWN_INODE for a root whose stat has not (yet)."""
    return [answer(future, UNKNOWN_INODE) for future in asked]
