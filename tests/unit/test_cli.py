"""The command line, as a user runs it: `python -m velora_tui ...` in a separate process.

Every run checks that no output holds a traceback or an escape character, and that the
database folder is byte-for-byte unchanged (hashes and mtimes) afterwards: around each
long-running command, and around the one concurrent batch that runs all the short ones.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.support.databases import MakeDb
from tests.support.folders import assert_unchanged, dir_snapshot
from velora_tui.cli import main
from velora_tui.data.database import MetricsDatabase
from velora_tui.data.monitor import Monitor


def test_export_stopped_by_a_lock_says_so(
    tmp_path: Path, make_db: MakeDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer that locks the file between two chunks of an export (a crashed or stuck
    training process): one line naming the state and exit 1, not an internal error."""
    path = make_db(tmp_path / "metrics.db", [12_000])
    writer = sqlite3.connect(path, isolation_level=None)
    chunks = MetricsDatabase.iter_episodes

    def locked_after_first(self: MetricsDatabase, exp_id: int, chunk: int = 5_000) -> Any:
        for number, rows in enumerate(chunks(self, exp_id, chunk)):
            yield rows
            if number == 0:
                writer.execute("BEGIN EXCLUSIVE")

    monkeypatch.setattr(MetricsDatabase, "iter_episodes", locked_after_first)
    target = tmp_path / "out.csv"
    try:
        result = CliRunner().invoke(main, ["export", "1", str(path), "-o", str(target)])
    finally:
        writer.close()
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "export stopped" in result.output
    assert "locked by a writer" in result.output
    assert "internal error" not in result.output
    assert len(target.read_text().splitlines()) == 1 + 5_000  # the header and the first chunk


def locked_after_first_load(monkeypatch: pytest.MonkeyPatch, path: Path) -> sqlite3.Connection:
    """A writer that takes an exclusive lock on `path` right after the command's first load
    (a training process stuck in a transaction while the command adds up the rows)."""
    writer = sqlite3.connect(path, isolation_level=None, timeout=0)
    refresh = Monitor.refresh

    def then_locked(self: Monitor, paths: Any = None) -> Any:
        updates = refresh(self, paths)
        if not writer.in_transaction:
            writer.execute("BEGIN EXCLUSIVE")
        return updates

    monkeypatch.setattr(Monitor, "refresh", then_locked)
    return writer


def test_ls_names_a_source_it_could_not_add_up(
    tmp_path: Path, make_db: MakeDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`ls` prints exact numbers or nothing of a source: the locked one is named on stderr, the
    other listed."""
    good = make_db(tmp_path / "good" / "metrics.db", [20])
    stuck = make_db(tmp_path / "stuck" / "metrics.db", [30, 30])
    writer = locked_after_first_load(monkeypatch, stuck)
    try:
        result = CliRunner().invoke(main, ["ls", "--json", str(good), str(stuck)])
    finally:
        writer.close()
    assert result.exit_code == 0
    listed = json.loads(result.stdout)
    assert [(item["db"], item["episodes"]) for item in listed] == [(str(good), 20)]
    assert f"velora-tui: {stuck}: locked" in result.stderr


def test_show_stopped_by_a_lock_says_so(
    tmp_path: Path, make_db: MakeDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = make_db(tmp_path / "metrics.db", [25])
    writer = locked_after_first_load(monkeypatch, path)
    try:
        result = CliRunner().invoke(main, ["show", "1", str(path)])
    finally:
        writer.close()
    assert result.exit_code == 1
    assert "locked by a writer" in result.output
    assert "internal error" not in result.output


def test_snapshot_helper_sees_changes(tmp_path: Path) -> None:
    """The folder check itself: it notices new files, changed bytes and touched mtimes."""
    target = tmp_path / "metrics.db"
    target.write_bytes(b"a")
    before = dir_snapshot(tmp_path)
    os.utime(target, ns=(target.stat().st_atime_ns, target.stat().st_mtime_ns + 1))
    assert dir_snapshot(tmp_path) != before
    before = dir_snapshot(tmp_path)
    (tmp_path / "metrics.db-journal").write_bytes(b"")
    assert dir_snapshot(tmp_path) != before
    before = dir_snapshot(tmp_path)
    with pytest.raises(AssertionError), assert_unchanged(tmp_path):
        target.write_bytes(b"b")
