"""How many databases a Monitor keeps open at once: a sweep of 1,000 runs (or a host with 5,000)
is a real case, and each open database holds two file descriptors (its SQLite connection and
the handle its header is read through) and its SQLite page cache.

Past `limit`, opening one closes the least recently used other that is not in a call (its
file's lock taken without waiting). A closed database keeps everything it read (summaries,
high-water marks) and is opened again by its next read, or by a refresh that finds the file
changed (a stat, and the header's change counter while the file is fresh): nothing is read or
handed out twice.
"""

from __future__ import annotations

import resource
import threading
from collections import OrderedDict
from typing import Protocol

# Databases open at once at most (the remote reader keeps as many).
OPEN_DATABASES = 64
# File descriptors left to the rest of the process (Python, the terminal, watchers, ssh);
# each open database takes about FILES_EACH of the others.
RESERVED_FILES = 64
FILES_EACH = 4


def open_limit() -> int:
    """OPEN_DATABASES, or fewer when this process may open few files (`ulimit -n`)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return OPEN_DATABASES
    return max(2, min(OPEN_DATABASES, (soft - RESERVED_FILES) // FILES_EACH))


class Closable(Protocol):
    def close_idle(self) -> bool:
        """Close the file now if no call is using it (True: it was closed)."""
        ...


class OpenFiles:
    """The open databases, least recently used first. Thread-safe: called from the lanes."""

    def __init__(self, limit: int | None = None) -> None:
        self.limit = open_limit() if limit is None else max(1, limit)
        self._lock = threading.Lock()
        self._open: OrderedDict[Closable, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._open)

    def opened(self, database: Closable) -> None:
        """`database` has just opened its file (in its lane, its lock held): close others,
        least recently used first, until no more than `limit` are open (those in a call are
        left to be closed later)."""
        with self._lock:
            self._open[database] = None
            self._open.move_to_end(database)
            over = len(self._open) - self.limit
            if over <= 0:
                return
            candidates = [other for other in self._open if other is not database]
        for other in candidates:
            if over <= 0:
                return
            if other.close_idle():  # calls `closed` (its own lock is taken, never waited for)
                over -= 1

    def used(self, database: Closable) -> None:
        with self._lock:
            if database in self._open:
                self._open.move_to_end(database)

    def closed(self, database: Closable) -> None:
        with self._lock:
            self._open.pop(database, None)
