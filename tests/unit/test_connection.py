"""The read-only connection against real files and writer processes: no lock left behind, values
read as stored, commits noticed from the header without a lock, a commit in progress let
finish first.

Every test that opens a file checks that its folder is byte-for-byte unchanged afterwards
(the monitor never changes the file, never creates one).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.support.databases import MakeDb, add_episode, execute
from tests.support.folders import assert_unchanged
from tests.support.reading import (
    INSERT_EPISODE,
    copy_sample,
    header_counter,
    load_series,
    opened,
    query,
    state,
)
from velora_tui.data import database
from velora_tui.data.connection import connect_readonly
from velora_tui.data.records import (
    SourceState,
)


def test_readers_leave_no_lock_behind(sample_db: Path) -> None:
    """After any read, a writer can take an exclusive lock at once (no cursor left open)."""
    db = opened(sample_db)
    try:
        with assert_unchanged(sample_db.parent):
            db.refresh()
            db.latest_episodes(None, 50)
            load_series(db, 1, buckets=10)
            db.config(1)
            iterator = db.iter_episodes(1, chunk=10)
            next(iterator)  # a paused iteration holds no statement open either
        writer = sqlite3.connect(sample_db, isolation_level=None, timeout=0)
        try:
            writer.execute("BEGIN EXCLUSIVE")
            writer.execute("ROLLBACK")
        finally:
            writer.close()
            del iterator
    finally:
        db.close()


def test_a_writer_can_commit_while_a_read_result_is_still_being_fetched(sample_db: Path) -> None:
    """Python's sqlite3 lets go of the GIL at every row; other threads then run while a plain
    cursor still holds the read lock, and the training's COMMIT waits. Each SELECT is copied
    out in one step of SQLite's own code, so the lock is gone before the first row reaches
    Python: here a commit made from inside the row factory (timeout 0) must go through."""
    rows_before = query(sample_db, "SELECT count(*) FROM episode")[0][0]
    commits: list[int] = []

    def commit_from_python(cursor: sqlite3.Cursor, row: tuple[Any, ...]) -> tuple[Any, ...]:
        if not commits:
            writer = sqlite3.connect(sample_db, isolation_level=None, timeout=0)
            try:
                writer.execute("BEGIN IMMEDIATE")
                writer.execute(COPY_LAST_EPISODE)
                writer.execute("COMMIT")
                commits.append(1)
            finally:
                writer.close()
        return row

    conn = connect_readonly(sample_db)
    try:
        conn.row_factory = commit_from_python
        rows = conn.execute("SELECT id, reward, created_at FROM episode ORDER BY id").fetchall()
    finally:
        conn.close()
    assert commits, "the writer never got its lock"
    assert len(rows) == rows_before  # the read saw the file as it was when it started
    assert [row[0] for row in rows] == sorted(row[0] for row in rows)
    assert query(sample_db, "SELECT count(*) FROM episode")[0][0] == rows_before + 1


def test_reads_return_stored_values_as_they_are(make_db: MakeDb, tmp_path: Path) -> None:
    """The staging copy has untyped columns: text in a number column stays text, blobs stay
    blobs, big integers stay exact (no type affinity on the way)."""
    path = make_db(tmp_path / "metrics.db", [1])
    execute(
        path,
        "UPDATE episode SET reward = ?, length = ?, actor_loss = ?, critic_loss = ?",
        ("12.5 points", 2**62 + 1, b"\x00\x01", "inf"),
    )
    plain = sqlite3.connect(path)
    try:
        expected = plain.execute("SELECT reward, length, actor_loss, critic_loss FROM episode")
        assert expected.fetchall() == [("12.5 points", 2**62 + 1, b"\x00\x01", "inf")]
    finally:
        plain.close()
    with assert_unchanged(tmp_path):
        conn = connect_readonly(path)
        try:
            found = conn.execute(
                "SELECT reward, length, actor_loss, critic_loss FROM episode"
            ).fetchall()
        finally:
            conn.close()
    assert found == [("12.5 points", 2**62 + 1, b"\x00\x01", "inf")]


def test_path_with_uri_characters(tmp_path: Path) -> None:
    folder = tmp_path / "odd #name?mode=rw&x%20"
    path = copy_sample(folder)
    with assert_unchanged(tmp_path):
        db = opened(path)
        db.refresh()
        assert state(db) is SourceState.OK
        assert len(db.summaries) == 3
        db.close()
        missing = opened(folder / "sub#x" / "metrics.db")
        missing.refresh()
        assert state(missing) is SourceState.WAITING
    assert not (folder / "sub#x").exists()


COPY_LAST_EPISODE = """
INSERT INTO episode (experiment_id, episode_num, reward, length, reward_moving_avg,
    reward_moving_std, actor_loss, critic_loss, entropy_loss, created_at)
SELECT experiment_id, episode_num + 1, reward, length, reward_moving_avg, reward_moving_std,
    actor_loss, critic_loss, entropy_loss, created_at FROM episode ORDER BY id DESC LIMIT 1
"""


def test_change_counter_counts_commits_in_rollback_mode(sample_db: Path) -> None:
    first = header_counter(sample_db)
    assert first is not None
    add_episode(sample_db, 1, episode_num=121)
    add_episode(sample_db, 1, episode_num=122)
    assert header_counter(sample_db) == first + 2


def test_a_writers_lock_is_not_touched_between_commits(
    sample_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between two commits the reader looks at the header's change counter only: no SQL, so no
    read lock that a writer's next COMMIT could find (here one holds EXCLUSIVE meanwhile)."""
    monkeypatch.setattr(database, "CONFIRM_INTERVAL", 3600.0)
    db = opened(sample_db, busy_timeout=0.1)
    writer = sqlite3.connect(sample_db, isolation_level=None)
    try:
        db.refresh()
        assert isinstance(db._conn, sqlite3.Connection)
        statements: list[str] = []
        db._conn.set_trace_callback(statements.append)
        writer.execute("BEGIN EXCLUSIVE")
        writer.execute(INSERT_EPISODE)
        assert not db.may_have_changed()
        update = db.refresh()
        assert update.episodes == []
        assert state(db) is SourceState.OK
        assert statements == []
        writer.execute("COMMIT")
        assert db.may_have_changed()
        assert statements == []
        assert [row.episode_num for row in db.refresh().episodes] == [500]
        assert statements  # the rows themselves are read with SQL, of course
    finally:
        writer.close()
        db.close()
