"""The read-only connection against real files and writer processes: no lock left behind, values
read as stored, commits noticed from the header without a lock, a commit in progress let
finish first.

Every test that opens a file checks that its folder is byte-for-byte unchanged afterwards
(the monitor never changes the file, never creates one).
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.databases import SAMPLE_EPISODES
from tests.support.reading import INSERT_EPISODE, opened
from velora_tui.data import writer_lock
from velora_tui.data.connection import ReadOnlyConnection, connect_readonly

TIMEOUT = 30.0

HOLD_THEN_COMMIT = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
conn.execute(sys.argv[2])
print("in transaction", flush=True)
time.sleep(float(sys.argv[3]))
conn.execute(sys.argv[4])
"""


def writer_in_transaction_process(
    path: Path, hold: float, end: str = "COMMIT", *, exclusive: bool = False
) -> subprocess.Popen[str]:
    """Another process (F_GETLK reports other processes' locks only) that holds RESERVED (or,
    `exclusive`, EXCLUSIVE: readers shut out, as during a COMMIT's writes) for `hold` seconds
    with one episode inserted, then commits (or rolls back)."""
    script = HOLD_THEN_COMMIT.replace("IMMEDIATE", "EXCLUSIVE") if exclusive else HOLD_THEN_COMMIT
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(path), INSERT_EPISODE, str(hold), end],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "in transaction"
    return proc


@pytest.mark.skipif(not writer_lock.SUPPORTED, reason="lock bytes are read on 64-bit Linux")
def test_a_writer_in_a_transaction_is_seen_from_its_lock_bytes(sample_db: Path) -> None:
    fd = os.open(sample_db, os.O_RDONLY)
    try:
        assert not writer_lock.writer_in_transaction(fd)
        proc = writer_in_transaction_process(sample_db, 0.5, "ROLLBACK")
        assert writer_lock.writer_in_transaction(fd)
        assert proc.wait(timeout=TIMEOUT) == 0
        assert not writer_lock.writer_in_transaction(fd)
    finally:
        os.close(fd)


@pytest.mark.skipif(not writer_lock.SUPPORTED, reason="lock bytes are read on 64-bit Linux")
def test_a_read_lets_a_commit_in_progress_finish_first(
    sample_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read that finds a writer between its first change and its COMMIT waits for the commit
    (a few ms at most) instead of taking the read lock the COMMIT would have to wait for: here
    the writer holds on for 0.3 s, and the read after it sees the committed row."""
    monkeypatch.setattr(writer_lock, "WAIT_LIMIT", 10.0)
    db = opened(sample_db)
    try:
        db.refresh()
        proc = writer_in_transaction_process(sample_db, 0.3)
        began = time.monotonic()
        rows = next(db.iter_episodes(1, chunk=1_000))
        assert time.monotonic() - began >= 0.2
        assert rows[-1].episode_num == 500  # read after the commit, not before it
        assert proc.wait(timeout=TIMEOUT) == 0
    finally:
        db.close()


@pytest.mark.skipif(not writer_lock.SUPPORTED, reason="lock bytes are read on 64-bit Linux")
def test_a_read_waits_for_a_commit_only_so_long(
    sample_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A transaction left open (a writer that hangs) delays each read by WAIT_LIMIT at most."""
    monkeypatch.setattr(writer_lock, "WAIT_LIMIT", 0.05)
    db = opened(sample_db)
    try:
        db.refresh()
        proc = writer_in_transaction_process(sample_db, 3.0, "ROLLBACK")
        began = time.monotonic()
        rows = next(db.iter_episodes(1, chunk=1_000))
        waited = time.monotonic() - began
        assert 0.05 <= waited < 1.0
        assert rows[-1].episode_num == SAMPLE_EPISODES[1]  # as committed before
        proc.kill()
        proc.wait(timeout=TIMEOUT)
    finally:
        db.close()


@pytest.mark.skipif(not writer_lock.SUPPORTED, reason="lock bytes are read on 64-bit Linux")
def test_a_read_refused_by_a_commit_reads_once_it_has_ended(sample_db: Path) -> None:
    """A commit that shuts readers out (EXCLUSIVE, 0.3 s here: a slow fsync) makes the read
    wait for its end, seen from its lock bytes, then read what it committed, without an error
    (SQLite's own busy handler, which slept up to 100 ms between tries, is off)."""
    db = opened(sample_db)
    fd = os.open(sample_db, os.O_RDONLY)
    try:
        db.refresh()
        proc = writer_in_transaction_process(sample_db, 0.3, exclusive=True)
        assert writer_lock.readers_shut_out(fd)
        rows = next(db.iter_episodes(1, chunk=1_000))
        assert not writer_lock.readers_shut_out(fd)
        assert rows[-1].episode_num == 500  # read after the commit, not before it
        assert proc.wait(timeout=TIMEOUT) == 0
    finally:
        os.close(fd)
        db.close()


@pytest.mark.skipif(not writer_lock.SUPPORTED, reason="lock bytes are read on 64-bit Linux")
def test_a_read_refused_by_a_commit_waits_the_busy_timeout_at_most(sample_db: Path) -> None:
    """A writer that keeps readers out (a hung commit) costs a read its busy timeout, then the
    read fails "locked" (the monitor says so and reads again later); with a busy timeout of 0
    (a poll's look) it fails without waiting for the commit."""
    conn = connect_readonly(sample_db, busy_timeout=0.2)
    fd = os.open(sample_db, os.O_RDONLY)
    assert isinstance(conn, ReadOnlyConnection)
    conn.commit_probe = fd
    proc = writer_in_transaction_process(sample_db, 30.0, "ROLLBACK", exclusive=True)
    try:
        began = time.monotonic()
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            conn.execute("SELECT count(*) FROM episode")
        assert 0.2 <= time.monotonic() - began < 10.0
        conn.execute("PRAGMA busy_timeout = 0")
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            conn.execute("SELECT count(*) FROM episode")
        conn.execute("PRAGMA busy_timeout = 1000")
        assert conn.busy_timeout == 1.0
    finally:
        proc.kill()
        proc.wait(timeout=TIMEOUT)
    (count,) = conn.execute("SELECT count(*) FROM episode").fetchone()
    assert count == sum(SAMPLE_EPISODES.values())
    conn.close()
    os.close(fd)
