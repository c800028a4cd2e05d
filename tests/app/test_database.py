"""MetricsDatabase and Monitor against real files.

Every test that opens a file checks that its folder is byte-for-byte unchanged afterwards
(the monitor never changes the file, never creates one).
"""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path

from tests.support.databases import add_episode
from tests.support.folders import assert_unchanged
from tests.support.reading import add_up, opened


def test_hostile_rows_arriving_live(sample_db: Path) -> None:
    db = opened(sample_db)
    try:
        db.refresh()
        add_up(db)
        add_episode(sample_db, 3, episode_num=61, reward=math.inf, created_at="soon")
        add_episode(sample_db, 3, episode_num=62, reward="NaN")
        add_episode(sample_db, 3, episode_num=63, reward=-1.0, created_at="2026-11-23 19:50:00")
        with assert_unchanged(sample_db.parent):
            update = db.refresh()
            assert len(update.episodes) == 3
            summary = db.summaries[3]
            assert summary.best_reward == 78.0
            assert summary.last_reward == -1.0
            assert summary.nonfinite == 2
            assert summary.last_activity == datetime(2026, 11, 23, 19, 50)
    finally:
        db.close()
