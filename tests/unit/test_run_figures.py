"""A run's figures as `ls`, `alerts` and the data layer give them, on files read cold (a first
load) and live, compared with hand arithmetic: its usual interval (the median of its recent
gaps: stalled or running, its ETA), when it is finished (velora numbers each training's
episodes 1..n_episodes), the time of its last episode when the last one is unreadable, and
which rows count as holding inf/NaN or text in a number column.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

from tests.support import PROJECT_ROOT
from tests.support.databases import RunSpec, build_velora_db
from tests.support.reading import opened
from velora_tui.data.records import RECENT, EpisodeRow, ExperimentSummary
from velora_tui.report.alerts import AlertTracker, current_alerts


def test_the_recent_times_of_many_runs_side_by_side(tmp_path: Path) -> None:
    """Runs written at the same time (ids interleaved), more of them than one read takes, some
    with fewer rows than RECENT: each gets its own newest times, none of another's."""
    path = build_velora_db(tmp_path / "metrics.db", [RunSpec(planned=500, write=0)] * 200)
    start = datetime.now() - timedelta(hours=1)
    rows = []
    for step in range(80):
        for exp in range(1, 201):
            if step < exp % 90:  # experiment e has e % 90 rows
                at = start + timedelta(seconds=step * exp)  # experiment e: e s apart
                rows.append((exp, step + 1, str(at)))
    with sqlite3.connect(path) as conn:
        conn.executemany(
            "INSERT INTO episode (experiment_id, episode_num, reward, length, reward_moving_avg,"
            " reward_moving_std, actor_loss, critic_loss, entropy_loss, created_at)"
            " VALUES (?, ?, 1, 10, 1, 0, -0.5, 0.5, -0.01, ?)",
            rows,
        )
    conn.close()
    db = opened(path)
    try:
        db.refresh()
        for exp in range(1, 201):
            summary = db.summaries[exp]
            written = min(exp % 90, 80)
            assert len(summary.recent) == min(written, RECENT), exp
            if written >= 6:
                assert summary.typical_interval() == timedelta(seconds=exp)
    finally:
        db.close()


def test_a_live_finish_is_alerted_with_the_number_reached() -> None:
    start = datetime(2026, 11, 24, 12)
    summary = ExperimentSummary(Path("/x/metrics.db"), 1, "Agent", "Env", start, 10)
    tracker = AlertTracker()

    def absorb(num: int, second: int) -> None:
        at = start + timedelta(seconds=second)
        summary.absorb(EpisodeRow(second, 1, num, 1.0, 10, 1.0, 0.0, -0.5, 0.5, -0.01, at))

    for second, num in enumerate([*range(1, 7), *range(1, 6)], 1):
        absorb(num, second)
    now = start + timedelta(seconds=12)
    tracker.observe([summary], now)
    assert tracker.observe([summary], now) == []  # 11 rows, episode 5 of 10: running
    for second, num in enumerate(range(6, 11), 12):
        absorb(num, second)
    [alert] = tracker.observe([summary], start + timedelta(seconds=17))
    assert alert.message.endswith(
        "finished: reached episode 10 of 10 planned (16 episodes recorded)"
    )
    assert [a.kind for a in current_alerts([summary], now)] == ["finished"]


MARKED = "inf/NaN or text in a reward, loss or moving average/std"


def test_the_readme_says_one_thing_about_the_mark() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text()
    flat = " ".join(readme.split())
    assert flat.count(MARKED) == 3  # the list's `!`, the alerts, `velora-tui alerts`
    assert "in a number column" not in flat
    assert "in a reward or loss" not in flat
