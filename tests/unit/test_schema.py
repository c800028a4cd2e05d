"""Which file is which: velora's two schemas read, everything else a clear state.

Every test that opens a file checks that its folder is byte-for-byte unchanged afterwards
(the monitor never changes the file, never creates one).
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import pytest

from tests.support.databases import MakeDb, add_episode, execute
from tests.support.folders import assert_unchanged
from tests.support.reading import copy_sample, load_series, opened, state
from velora_tui.data.records import (
    RunStatus,
    SourceState,
)

TIMEOUT = 30.0


def test_both_schemas(tmp_path: Path, make_db: MakeDb, schema: str) -> None:
    path = make_db(tmp_path / "metrics.db", [30, 20], schema=schema)
    with assert_unchanged(tmp_path):
        db = opened(path)
        db.refresh()
        assert state(db) is SourceState.OK
        assert {k: s.episodes for k, s in db.summaries.items()} == {1: 30, 2: 20}
        assert db.summaries[2].status(datetime.now()) is RunStatus.FINISHED
        rows = db.latest_episodes(1, 5)
        assert len(rows) == 5
        if schema == "0.1.1":
            assert all(row.entropy_loss is None for row in rows)
            assert all(row.to_json()["entropy_loss"] is None for row in rows)
        else:
            assert all(row.entropy_loss is not None for row in rows)
        series = load_series(db, 1)
        assert series.bands["entropy_loss"].has_data() is (schema == "0.2.0")
        assert series.bands["reward"].has_data()
        replayed = opened(path, replay=True)
        assert len(replayed.refresh().episodes) == 50
        assert all(
            (r.entropy_loss is None) is (schema == "0.1.1") for r in replayed.refresh().episodes
        )
        replayed.close()
        db.close()


def test_0_1_1_live_rows(tmp_path: Path, make_db: MakeDb) -> None:
    path = make_db(tmp_path / "metrics.db", [5], schema="0.1.1")
    db = opened(path)
    try:
        db.refresh()
        add_episode(path, 1, episode_num=6, reward=12.0)
        with assert_unchanged(tmp_path):
            [row] = db.refresh().episodes
            assert row.entropy_loss is None
            assert not row.has_nonfinite
            assert db.summaries[1].episodes == 6
    finally:
        db.close()


def test_empty_file_is_waiting(tmp_path: Path) -> None:
    path = tmp_path / "metrics.db"
    path.touch()
    with assert_unchanged(tmp_path):
        db = opened(path)
        db.refresh()
        assert state(db) is SourceState.WAITING
        assert "empty" in db.status.message
        assert not db.refresh()  # same bytes: nothing new
        db.close()


def test_sqlite_file_without_tables_is_waiting(tmp_path: Path) -> None:
    path = tmp_path / "metrics.db"
    execute(path, "PRAGMA user_version = 1")  # a valid database file with no tables
    assert path.stat().st_size > 0
    with assert_unchanged(tmp_path):
        db = opened(path)
        db.refresh()
        assert state(db) is SourceState.WAITING
        db.close()


def test_empty_file_then_velora_creates_tables(tmp_path: Path, make_db: MakeDb) -> None:
    path = tmp_path / "metrics.db"
    path.touch()
    db = opened(path)
    try:
        with assert_unchanged(tmp_path):
            db.refresh()
            assert state(db) is SourceState.WAITING
        make_db(path, [4])
        with assert_unchanged(tmp_path):
            update = db.refresh()
            assert update.status_changed
            assert state(db) is SourceState.OK
            assert db.summaries[1].episodes == 4
    finally:
        db.close()


@pytest.mark.parametrize(
    "content",
    [b"hello, this is not a database\n" * 10, b"\x00" * 4096, b"SQLite format 2\x00" + b"x" * 200],
)
def test_non_sqlite_file_is_unreadable(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "metrics.db"
    path.write_bytes(content)
    with assert_unchanged(tmp_path):
        db = opened(path)
        update = db.refresh()
        assert state(db) is SourceState.UNREADABLE
        assert db.status.message == "not a SQLite database"
        assert update.status_changed
        assert not db.refresh().status_changed
        assert db.latest_episodes(None, 3) == []
        db.close()


def test_sqlite_without_velora_tables_is_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "metrics.db"
    execute(path, "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    with assert_unchanged(tmp_path):
        db = opened(path)
        db.refresh()
        assert state(db) is SourceState.UNREADABLE
        assert "not a velora metrics database" in db.status.message
        assert "notes" in db.status.message
        db.close()


def test_velora_table_missing_a_column_is_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "metrics.db"
    execute(path, "CREATE TABLE experiment (id INTEGER PRIMARY KEY, agent TEXT)")
    execute(path, "CREATE TABLE episode (id INTEGER PRIMARY KEY, experiment_id INTEGER)")
    with assert_unchanged(tmp_path):
        db = opened(path)
        db.refresh()
        assert state(db) is SourceState.UNREADABLE
        assert "lacks" in db.status.message
        db.close()


@pytest.mark.parametrize("size", [100, 4096, 20_000])
def test_truncated_database_is_unreadable(tmp_path: Path, size: int) -> None:
    path = copy_sample(tmp_path)
    os.truncate(path, size)
    with assert_unchanged(tmp_path):
        db = opened(path)
        db.refresh()
        assert state(db) is SourceState.UNREADABLE
        assert "damaged" in db.status.message or "not a" in db.status.message
        assert db.latest_episodes(None, 3) == []
        db.close()
