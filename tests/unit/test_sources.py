"""Several sources at once: directories, and one source never stopping another.

Every test that opens a file checks that its folder is byte-for-byte unchanged afterwards
(the monitor never changes the file, never creates one).
"""

from __future__ import annotations

from pathlib import Path

from tests.support.databases import MakeDb
from tests.support.folders import assert_unchanged
from tests.support.reading import copy_sample
from velora_tui.data.discovery import database_for, find_databases
from velora_tui.data.monitor import Monitor
from velora_tui.data.records import (
    SourceState,
)

TIMEOUT = 30.0


def test_missing_directory_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "not" / "there" / "metrics.db"
    with assert_unchanged(tmp_path):
        monitor = Monitor([path])
        assert monitor.refresh() == []
        [status] = monitor.statuses()
        assert status.state is SourceState.WAITING
        monitor.close()
    assert not (tmp_path / "not").exists()


def test_directory_source_finds_databases_below_it(tmp_path: Path, make_db: MakeDb) -> None:
    root = tmp_path / "runs"
    first = copy_sample(root / "a")
    second = make_db(root / "b" / "c" / "metrics.db", [4])
    make_db(root / ".hidden" / "metrics.db", [1])
    make_db(root / "node_modules" / "metrics.db", [1])
    make_db(root / "b" / "other.db", [1])
    with assert_unchanged(tmp_path):
        monitor = Monitor([root])
        assert sorted(monitor.databases) == sorted([first, second])
        assert find_databases(root) == [first, second]
        updates = monitor.refresh()
        assert {u.db for u in updates} == {first, second}
        assert len(monitor.summaries()) == 4
        assert [s.db for s in monitor.find(1)] == [first, second]
        assert monitor.summary((second, 1)) is not None
        assert monitor.summary((second, 9)) is None
        assert monitor.watch_roots()[0].path == root
        assert monitor.watch_roots()[0].recursive
        assert monitor.owns(first.with_name("metrics.db-journal")) == first
        assert monitor.owns(root / "b" / "other.db") is None
        assert monitor.discover() == []
        assert monitor.refresh() == []
    later = make_db(root / "later" / "metrics.db", [6])
    with assert_unchanged(tmp_path):
        assert monitor.discover() == [later]
        [update] = monitor.refresh()
        assert update.db == later
        assert len(monitor.summaries()) == 5
        assert all(s.state is SourceState.OK for s in monitor.statuses())
        monitor.close()


def test_empty_directory_source_waits(tmp_path: Path, make_db: MakeDb) -> None:
    with assert_unchanged(tmp_path):
        monitor = Monitor([tmp_path])
        assert monitor.databases == {}
        [status] = monitor.statuses()
        assert status.state is SourceState.WAITING
        assert "no metrics.db" in status.message
    path = make_db(tmp_path / "x" / "metrics.db", [2])
    with assert_unchanged(tmp_path):
        # A file event for a new database in the directory adds it.
        assert monitor.owns(path.with_name("metrics.db-journal")) == path
        assert len(monitor.refresh()) == 1
        assert [s.state for s in monitor.statuses()] == [SourceState.OK]
        monitor.close()


def test_monitor_keeps_sources_independent(tmp_path: Path) -> None:
    good = copy_sample(tmp_path / "good")
    bad = tmp_path / "bad" / "metrics.db"
    bad.parent.mkdir()
    bad.write_text("not sqlite")
    missing = tmp_path / "missing" / "metrics.db"
    with assert_unchanged(tmp_path):
        monitor = Monitor([good, bad, missing])
        monitor.refresh()
        states = {s.path: s.state for s in monitor.statuses()}
        assert states == {
            good: SourceState.OK,
            bad: SourceState.UNREADABLE,
            missing: SourceState.WAITING,
        }
        assert len(monitor.summaries()) == 3
        roots = monitor.watch_roots()
        assert {r.path for r in roots} == {good.parent, bad.parent, missing.parent}
        assert not any(r.recursive for r in roots)
        monitor.close()


def test_database_for_side_files() -> None:
    base = Path("/x/metrics.db")
    for suffix in ("", "-journal", "-wal", "-shm"):
        assert database_for(Path(f"/x/metrics.db{suffix}")) == base
