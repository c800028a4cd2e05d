"""MetricsDatabase and Monitor against real files.

Every test that opens a file checks that its folder is byte-for-byte unchanged afterwards
(the monitor never changes the file, never creates one).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from tests.support.databases import execute
from tests.support.folders import assert_unchanged
from tests.support.processes import Simulator, Spawn
from tests.support.reading import add_up, load_series, opened, state
from velora_tui.data.records import (
    SourceState,
)

TIMEOUT = 30.0


def test_live_writer_process(tmp_path: Path, simulator: Simulator) -> None:
    """A real writer process at full speed: every row arrives once and the writer never fails."""
    path = tmp_path / "run" / "metrics.db"
    path.parent.mkdir()
    db = opened(path, replay=True)
    seen: list[int] = []
    try:
        proc = simulator(path, episodes=150, experiments=2, rate=0)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            seen.extend(row.id for row in db.refresh().episodes)
            if proc.poll() is not None and len(seen) >= 300:
                break
            time.sleep(0.01)
        assert proc.wait(10) == 0
        with assert_unchanged(path.parent):
            seen.extend(row.id for row in db.refresh().episodes)
            assert seen == list(range(1, 301))
            assert {k: s.episodes for k, s in db.summaries.items()} == {1: 150, 2: 150}
            assert all(s.finished for s in db.summaries.values())
            assert len(load_series(db, 2, buckets=10)) <= 10
    finally:
        db.close()


CRASHING_WRITER = """
import os, sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA cache_size = 1")  # spill: the journal is synced, the file half-written
conn.execute("BEGIN")
conn.execute("UPDATE episode SET reward = -1")
conn.execute(
    "INSERT INTO episode (experiment_id, episode_num, reward, length, reward_moving_avg,"
    " reward_moving_std, actor_loss, critic_loss, entropy_loss, created_at)"
    " SELECT experiment_id, episode_num, reward, length, reward_moving_avg, reward_moving_std,"
    " actor_loss, critic_loss, entropy_loss, created_at FROM episode,"
    " (SELECT 1 UNION SELECT 2 UNION SELECT 3 UNION SELECT 4 UNION SELECT 5 UNION SELECT 6)"
)
os._exit(0)  # a training process killed mid-transaction: a hot journal stays behind
"""


def test_hot_journal_left_by_a_crashed_writer(sample_db: Path, spawn: Spawn) -> None:
    db = opened(sample_db, busy_timeout=0.1)
    try:
        db.refresh()
        add_up(db)
        proc = spawn([sys.executable, "-c", CRASHING_WRITER, sample_db])
        assert proc.wait(TIMEOUT) == 0
        journal = sample_db.with_name("metrics.db-journal")
        assert journal.exists()
        assert journal.stat().st_size > 0
        with assert_unchanged(sample_db.parent):  # neither rolled back nor deleted
            db.refresh()  # already open and nothing committed: it may not need to look
            assert state(db) in (SourceState.LOCKED, SourceState.OK)
            fresh = opened(sample_db, busy_timeout=0.1)
            fresh.refresh()
            assert state(fresh) is SourceState.LOCKED
            assert "hot journal" in fresh.status.message
            assert fresh.latest_episodes(1, 1) == []
            fresh.refresh()
            assert state(fresh) is SourceState.LOCKED
        # The next writer (the next training run) recovers the file; nothing was committed.
        execute(sample_db, "SELECT count(*) FROM episode")
        assert not journal.exists()
        with assert_unchanged(sample_db.parent):
            update = db.refresh()
            assert state(db) is SourceState.OK
            assert update.episodes == []
            assert db.summaries[1].best_reward == 51.0
            assert db.latest_episodes(1, 1)[0].reward == 11.0
            fresh.refresh()
            assert state(fresh) is SourceState.OK
            add_up(fresh)
            assert fresh.summaries[1].best_reward == 51.0
            fresh.close()
    finally:
        db.close()
