"""A first load from each experiment's first and last rows, and the scan that adds up the rest,
against real files: the first load's cost does not grow with the episodes, and every aggregate
ends up exact whatever the file's layout (runs side by side, a resumed run, odd episode numbers,
rows arriving meanwhile, a lock, a replaced file).
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.support.databases import MakeDb, add_episode, execute
from tests.support.folders import assert_unchanged
from tests.support.reading import FarFiles, add_up, opened, query, state
from velora_tui.data import database, exact_totals
from velora_tui.data.connection import connect_readonly
from velora_tui.data.database import MetricsDatabase
from velora_tui.data.files import FileSystem
from velora_tui.data.monitor import Monitor
from velora_tui.data.records import RECENT, SourceState


def truth(path: Path) -> dict[int, tuple[int, float | None, int]]:
    """Each experiment's count, best finite reward and rows with a non-finite metric, in SQL."""
    finite = "BETWEEN -1.7976931348623157e308 AND 1.7976931348623157e308"
    rows = query(
        path,
        f"""SELECT experiment_id, count(*), max(CASE WHEN reward {finite} THEN reward END),
                   sum(CASE WHEN reward {finite} AND actor_loss {finite}
                            AND critic_loss {finite} AND reward_moving_avg {finite}
                            AND reward_moving_std {finite}
                            AND (entropy_loss IS NULL OR entropy_loss {finite})
                       THEN 0 ELSE 1 END)
            FROM episode GROUP BY experiment_id""",
    )
    return {exp: (count, best, bad) for exp, count, best, bad in rows}


def exact(db: database.MetricsDatabase) -> dict[int, tuple[int, float | None, int]]:
    def best(value: float) -> float | None:
        return None if math.isnan(value) else value

    return {
        k: (s.episodes, best(s.best_reward), s.nonfinite)
        for k, s in db.summaries.items()
        if s.episodes
    }


def side_by_side(path: Path, make_db: MakeDb, runs: int, rows: int) -> Path:
    """`runs` experiments written at once, their rows interleaved (ids spread over the file)."""
    make_db(path, [])
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN")
        config = json.dumps({"train_params": {"n_episodes": rows}})
        conn.executemany(
            "INSERT INTO experiment (agent, env, config, created_at) VALUES (?, ?, ?, ?)",
            [("A", "E", config, "2026-12-01 10:00:00")] * runs,
        )
        values = [
            (exp, num, float((num * 7 + exp) % 101), 10, 1.0, 0.5, -0.5, 0.5, -0.01,
             "2026-12-01 10:00:00")
            for num in range(1, rows + 1)
            for exp in range(1, runs + 1)
        ]  # fmt: skip
        conn.executemany(
            "INSERT INTO episode (experiment_id, episode_num, reward, length, reward_moving_avg,"
            " reward_moving_std, actor_loss, critic_loss, entropy_loss, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            values,
        )
        conn.execute("COMMIT")
    finally:
        conn.close()
    return path


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Rows each statement of the scan covered (counted the way SQLite sees them)."""
    covered: list[int] = []
    steps = exact_totals.Scan.steps

    def counting(self: exact_totals.Scan, fetch_all: Any, schema: Any, width: int) -> Any:
        def counted(reads: Any) -> Any:
            answers = fetch_all(reads)
            for rows in answers:
                covered.append(sum(int(row[-3] or 0) for row in rows))
            return answers

        return steps(self, counted, schema, width)

    monkeypatch.setattr(exact_totals.Scan, "steps", counting)
    return covered


def test_first_load_cost_does_not_grow_with_episodes(tmp_path: Path, make_db: MakeDb) -> None:
    """SQLite's own work for a first load (its virtual machine steps) is about the same for
    RECENT (the newest rows whose times it reads) and for 2,000 episodes an experiment; the
    scan's grows with them."""

    def steps(path: Path) -> tuple[int, int]:
        counted = [0]

        class Counting(FileSystem):
            def connect(self, target: Path, busy_timeout: float) -> sqlite3.Connection:
                conn = connect_readonly(target, busy_timeout)

                def tick() -> int:
                    counted[0] += 1
                    return 0

                conn.set_progress_handler(tick, 100)
                return conn

        db = MetricsDatabase(path, files=Counting())
        db.refresh()
        first_load = counted[0]
        add_up(db)
        db.close()
        return first_load, counted[0] - first_load

    small = steps(make_db(tmp_path / "small" / "metrics.db", [RECENT] * 20))
    big = steps(make_db(tmp_path / "big" / "metrics.db", [2_000] * 20))
    assert big[0] <= 1.5 * small[0] + 50
    assert big[1] > 20 * small[1]


def test_runs_side_by_side_in_bounded_reads(
    tmp_path: Path, make_db: MakeDb, monkeypatch: pytest.MonkeyPatch, reads: list[int]
) -> None:
    path = side_by_side(tmp_path / "metrics.db", make_db, runs=5, rows=3_000)
    monkeypatch.setattr(exact_totals, "ROWS_PER_READ", 1_000)
    with assert_unchanged(tmp_path):
        db = opened(path)
        db.refresh()
        assert all(not s.scanned and s.episodes == 3_000 for s in db.summaries.values())
        add_up(db)
        assert exact(db) == truth(path)
        assert all(s.scanned for s in db.summaries.values())
        db.close()
    assert sum(reads) == 15_000
    assert max(reads) <= 2 * 1_000  # no read much longer than asked, whatever the layout
    assert reads[0] <= 1_000  # the first range read assumes the densest rows


def test_resumed_run_and_junk_episode_numbers_end_exact(tmp_path: Path, make_db: MakeDb) -> None:
    """A run resumed from a checkpoint numbers its episodes again from 1; another's numbers are
    text: the first screen shows an estimate, the scan the exact count."""
    path = make_db(tmp_path / "metrics.db", [500, 20])
    for num in range(1, 301):  # experiment 1 resumed: 1..300 again
        add_episode(path, 1, episode_num=num, reward=float(num))
    execute(path, "UPDATE episode SET episode_num = 'x' WHERE experiment_id = 2")
    with assert_unchanged(tmp_path):
        db = opened(path)
        update = db.refresh()
        assert update.first_load
        assert db.summaries[1].episodes == 300  # from the last row's number
        assert db.summaries[2].episodes == 2  # no usable numbers: first and last row
        add_up(db)
        assert db.summaries[1].episodes == 800
        assert db.summaries[2].episodes == 20
        assert exact(db) == truth(path)
        db.close()


def test_rows_arriving_during_the_scan_are_counted_once(tmp_path: Path, make_db: MakeDb) -> None:
    path = make_db(tmp_path / "metrics.db", [50, 50])
    db = opened(path)
    try:
        db.refresh()
        add_episode(path, 1, episode_num=51, reward=1e6)
        add_episode(path, 2, episode_num=51, reward=math.inf)
        update = db.refresh()
        assert [row.episode_num for row in update.episodes] == [51, 51]
        assert db.summaries[1].best_reward == 1e6  # a live row counts at once
        add_up(db)
        assert exact(db) == truth(path)
        assert db.summaries[2].nonfinite == 1
    finally:
        db.close()


def test_scan_waits_out_a_lock_and_goes_on(tmp_path: Path, make_db: MakeDb) -> None:
    path = make_db(tmp_path / "metrics.db", [30, 30, 30])
    db = opened(path, busy_timeout=0.05)
    writer = sqlite3.connect(path, isolation_level=None)
    try:
        db.refresh()
        writer.execute("BEGIN EXCLUSIVE")
        assert db.scan_step() is None  # nothing can be read now: the state says why
        assert state(db) is SourceState.LOCKED
        assert db.scanning
        writer.execute("COMMIT")
        assert db.refresh().status_changed  # what starts the app's scan again
        assert state(db) is SourceState.OK
        add_up(db)
        assert exact(db) == truth(path)
    finally:
        writer.close()
        db.close()


def test_a_file_replaced_during_the_scan_starts_over(tmp_path: Path, make_db: MakeDb) -> None:
    path = make_db(tmp_path / "metrics.db", [40, 40])
    db = opened(path)
    try:
        db.refresh()
        other = make_db(tmp_path / "other.db", [7])
        os.replace(other, path)
        update = db.refresh()
        assert update.reset
        assert update.first_load
        assert set(db.summaries) == {1}
        add_up(db)
        assert exact(db) == truth(path)
    finally:
        db.close()


def test_one_experiment_added_up_alone(tmp_path: Path, make_db: MakeDb) -> None:
    """What `show ID` does: that experiment exact, the others still pending."""
    path = make_db(tmp_path / "metrics.db", [25, 35, 45])
    db = opened(path)
    try:
        db.refresh()
        db.add_up(2)
        assert db.summaries[2].scanned
        assert exact(db)[2] == truth(path)[2]
        assert not db.summaries[1].scanned
        assert db.scanning
        add_up(db)
        assert exact(db) == truth(path)
    finally:
        db.close()


def test_monitor_scan_reports_experiments_as_they_are_exact(
    tmp_path: Path, make_db: MakeDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(exact_totals, "ROWS_PER_READ", 100)
    first = make_db(tmp_path / "a" / "metrics.db", [60, 60, 60])
    second = make_db(tmp_path / "b" / "metrics.db", [90])
    monitor = Monitor([first, second])
    try:
        monitor.refresh()
        assert monitor.scanning()
        reported = [
            (u.db, exp) for updates in monitor.scan() for u in updates for exp in u.experiments
        ]
        assert sorted(reported) == sorted([(first, 1), (first, 2), (first, 3), (second, 1)])
        assert not monitor.scanning()
        assert monitor.scan_all() == []
    finally:
        monitor.close()


def test_a_first_load_reads_in_pages(
    tmp_path: Path, make_db: MakeDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Experiments and their first and last rows are read a few per statement (so no read of a
    file of thousands of experiments is long), with the same result as in one statement."""
    path = make_db(tmp_path / "metrics.db", [5, 0, 7, 3, 9, 4, 6])
    add_episode(path, 99, episode_num=1)  # episodes of an experiment without a row
    whole = opened(path)
    whole.refresh()
    monkeypatch.setattr(database, "EDGES_PER_READ", 2)
    monkeypatch.setattr(database, "EXPERIMENTS_PER_READ", 3)
    paged = opened(path)
    try:
        paged.refresh()
        assert set(paged.summaries) == {1, 2, 3, 4, 5, 6, 7, 99}
        assert paged.summaries[2].episodes == 0
        for exp_id, summary in whole.summaries.items():
            other = paged.summaries[exp_id]
            assert (other.agent, other.episodes, other.first_id, other.last_id) == (
                summary.agent,
                summary.episodes,
                summary.first_id,
                summary.last_id,
            )
        add_up(paged)
        assert exact(paged) == truth(path)
    finally:
        whole.close()
        paged.close()


@pytest.mark.parametrize("layout", ["side by side", "one after another", "mixed"])
def test_a_far_host_is_asked_several_short_reads_at_once(
    tmp_path: Path,
    make_db: MakeDb,
    monkeypatch: pytest.MonkeyPatch,
    reads: list[int],
    layout: str,
) -> None:
    """The same exact figures as one read at a time, each read as short, in fewer round trips."""
    monkeypatch.setattr(exact_totals, "ROWS_PER_READ", 1_000)
    path = tmp_path / "metrics.db"
    if layout == "side by side":
        side_by_side(path, make_db, runs=20, rows=1_500)
    elif layout == "one after another":
        make_db(path, [2_500] * 12 + [300] * 40)
    else:
        make_db(path, [40, 4_000, 10, 10, 3_000] * 6)
        for num in range(1, 200):
            add_episode(path, 3, episode_num=num, reward=math.inf if num % 7 else 1e9)
    batches: list[int] = []
    with assert_unchanged(tmp_path):
        db = MetricsDatabase(path, files=FarFiles(batches))
        db.refresh()
        add_up(db)
        assert exact(db) == truth(path)
        assert all(s.scanned for s in db.summaries.values())
        db.close()
    assert max(reads) <= 2 * 1_000  # each read as short as one asked alone
    assert sum(batches) <= len(reads)
    assert max(batches) == database.FAR_READS  # several at once...
    assert len(batches) + len(reads) - sum(batches) < len(reads) / 4  # ...in far fewer trips
