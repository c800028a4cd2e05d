"""Whether another process is committing to a SQLite file in rollback-journal mode, seen from
its lock bytes without taking any lock.

A writer holds RESERVED from its first change until its COMMIT, when it takes PENDING and then
EXCLUSIVE. A reader that takes its SHARED lock in that window makes the COMMIT wait: SQLite's
busy handler sleeps 1 ms, then 2, 5..., and such a commit is among the writer's slowest. So a
read that finds a writer in that window waits for its commit first, for a few ms at most
(docs/performance.md has the measurements).

`F_GETLK` asks the kernel which lock would conflict: it takes none, and reports only other
processes' locks. Linux only (the layout of `struct flock` differs elsewhere); elsewhere and in
WAL mode (where readers never block the writer) nothing is checked.
"""

from __future__ import annotations

import fcntl
import struct
import sys
import time

# SQLite's lock bytes (os.h): PENDING, then RESERVED, then the 510 SHARED bytes.
PENDING_BYTE = 0x40000000
SHARED_FIRST = PENDING_BYTE + 2
SHARED_SIZE = 510
# Linux's struct flock on 64-bit systems: l_type, l_whence, l_start, l_len, l_pid (padded).
FLOCK = struct.Struct("hhqqi4x")
SUPPORTED = sys.platform == "linux" and struct.calcsize("P") == 8
# How long a read waits at most for a commit in progress (a few of velora's commits), and how
# often it looks meanwhile.
WAIT_LIMIT = 0.005
WAIT_STEP = 0.0002
# A read refused by a commit (SQLITE_BUSY) looks again this often at most, first every
# WAIT_STEP: it reads as soon as the commit has ended, rather than at SQLite's own busy
# handler's next try (its sleeps grow to 100 ms: docs/performance.md, "The first live read").
BUSY_STEP = 0.001


def writer_in_transaction(fd: int) -> bool:
    """Another process holds RESERVED or PENDING on the file open as `fd` (False if unknown)."""
    if not SUPPORTED:
        return False
    probe = FLOCK.pack(fcntl.F_WRLCK, 0, PENDING_BYTE, 2, 0)
    try:
        answer = fcntl.fcntl(fd, fcntl.F_GETLK, probe)
    except OSError:
        return False
    return bool(FLOCK.unpack(answer)[0] != fcntl.F_UNLCK)


def wait_for_commit(fd: int) -> None:
    """Wait while another process is in a write transaction, WAIT_LIMIT seconds at most."""
    if not writer_in_transaction(fd):
        return
    deadline = time.perf_counter() + WAIT_LIMIT
    while time.perf_counter() < deadline:
        time.sleep(WAIT_STEP)
        if not writer_in_transaction(fd):
            return


def _held(fd: int, start: int, length: int) -> bool:
    """Another process holds a write lock on these bytes (a read lock there would wait)."""
    probe = FLOCK.pack(fcntl.F_RDLCK, 0, start, length, 0)
    try:
        answer = fcntl.fcntl(fd, fcntl.F_GETLK, probe)
    except OSError:
        return False
    return bool(FLOCK.unpack(answer)[0] != fcntl.F_UNLCK)


def readers_shut_out(fd: int) -> bool:
    """Another process holds PENDING or EXCLUSIVE on the file open as `fd`: a new SHARED lock
    cannot be had until its commit ends (False if unknown)."""
    if not SUPPORTED:
        return False
    return _held(fd, PENDING_BYTE, 1) or _held(fd, SHARED_FIRST, SHARED_SIZE)


def wait_for_readers_turn(fd: int, until: float) -> None:
    """After SQLITE_BUSY: wait while a commit shuts readers out, until `until`
    (time.perf_counter()), looking every WAIT_STEP, then less often, BUSY_STEP at most."""
    step = WAIT_STEP
    while readers_shut_out(fd):
        left = until - time.perf_counter()
        if left <= 0:
            return
        time.sleep(min(step, left))
        step = min(2 * step, BUSY_STEP)
