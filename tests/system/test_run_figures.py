"""A run's figures as `ls`, `alerts` and the data layer give them, on files read cold (a first
load) and live, compared with hand arithmetic: its usual interval (the median of its recent
gaps: stalled or running, its ETA), when it is finished (velora numbers each training's
episodes 1..n_episodes), the time of its last episode when the last one is unreadable, and
which rows count as holding inf/NaN or text in a number column.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import run_cli, strict_json
from tests.support.databases import run_file, spaced
from tests.support.folders import assert_unchanged
from tests.support.reading import add_up, opened
from velora_tui.data.groups import group_runs
from velora_tui.data.records import RECENT, ExperimentSummary, RunStatus


def cold_and_live(path: Path) -> tuple[ExperimentSummary, ExperimentSummary]:
    """Experiment 1 read by a first load (rows added up), and by a replay of every row."""
    cold, live = opened(path), opened(path, replay=True)
    try:
        cold.refresh()
        add_up(cold)
        live.refresh()
        return cold.summaries[1], live.summaries[1]
    finally:
        cold.close()
        live.close()


def ls_json(path: Path) -> dict[str, Any]:
    with assert_unchanged(path.parent):
        result = run_cli("ls", "--json", path)
    assert result.code == 0, result.err
    [data] = strict_json(result.out)
    assert isinstance(data, dict)
    return data


def alert_lines(path: Path) -> list[str]:
    with assert_unchanged(path.parent):
        result = run_cli("alerts", path)
    assert result.code == 0, result.err
    return result.lines


# -- the usual interval: the median of the recent gaps, cold as live -----------------------------


def test_a_run_that_slowed_down_is_running_not_stalled(tmp_path: Path) -> None:
    """100 episodes 0.01 s apart, then 64 episodes 10 s apart, the last 150 s ago: the median
    of the recent gaps is 10 s, so it stalls only after 200 s (the whole-run mean, 3.9 s, said
    stalled after 78 s)."""
    now = datetime.now()
    times = spaced(now - timedelta(seconds=150), [0.01] * 99 + [10.0] * 64)
    path = run_file(tmp_path / "metrics.db", 1000, times)
    cold, live = cold_and_live(path)
    for summary in (cold, live):
        assert summary.typical_interval() == timedelta(seconds=10)
        assert summary.status(now) is RunStatus.RUNNING
    data = ls_json(path)
    assert data["status"] == "running"
    assert not [line for line in alert_lines(path) if "stalled" in line]


def test_a_run_that_paused_long_ago_and_then_stopped_is_stalled(tmp_path: Path) -> None:
    """100 episodes 1 s apart, a 3 h pause, 10 more 1 s apart, the last 5 min ago: it usually
    writes one a second, so 5 minutes without one is a stall (the whole-run mean, ~100 s, hid it
    for 33 minutes)."""
    now = datetime.now()
    times = spaced(now - timedelta(minutes=5), [1.0] * 99 + [3 * 3600.0] + [1.0] * 9)
    path = run_file(tmp_path / "metrics.db", 1000, times)
    cold, live = cold_and_live(path)
    for summary in (cold, live):
        assert summary.typical_interval() == timedelta(seconds=1)
        assert summary.status(now) is RunStatus.STALLED
    assert ls_json(path)["status"] == "stalled"
    [line] = alert_lines(path)
    assert "stalled: no episode for 5 min (usually one every 1.00 s)" in line


def test_eta_is_the_episodes_left_times_the_median_gap(tmp_path: Path) -> None:
    """Gaps [1, 1, 1, 1, 1, 1, 15] s and 12 episodes left: 12 s (the mean gap, 3 s, gave 36 s)."""
    times = spaced(datetime.now(), [1.0] * 6 + [15.0])
    path = run_file(tmp_path / "metrics.db", 20, times)
    cold, live = cold_and_live(path)
    for summary in (cold, live):
        assert summary.eta() == timedelta(seconds=12)
        assert summary.episodes_per_minute() == 60.0
    groups = group_runs([cold], {cold.key: {}})
    assert groups[0].eta(datetime.now()) == timedelta(seconds=12)


def test_a_first_load_reads_as_many_recent_times_as_the_live_path_keeps(tmp_path: Path) -> None:
    """A long run: the first load's recent times are its newest RECENT rows, as a replay keeps
    them, so both give the same median; the oldest gaps (slow ones here) do not count."""
    gaps = [30.0] * 500 + [2.0] * (RECENT - 1)
    path = run_file(tmp_path / "metrics.db", 10_000, spaced(datetime.now(), gaps))
    cold, live = cold_and_live(path)
    assert list(cold.recent) == list(live.recent)
    assert len(cold.recent) == RECENT
    assert cold.typical_interval() == live.typical_interval() == timedelta(seconds=2)


# -- an unreadable last time -------------------------------------------------------------------


def test_an_unreadable_last_time_keeps_the_last_valid_one(tmp_path: Path) -> None:
    """The newest rows' times are not times: `ls` and `alerts` give the last valid time, as the
    live path does, not "no episode for -"."""
    last_valid = datetime.now().replace(microsecond=0) - timedelta(minutes=10)
    times: list[datetime | str | int] = list(spaced(last_valid, [1.0] * 20))
    times += ["not a time", 12345]
    path = run_file(tmp_path / "metrics.db", 1000, times)
    cold, live = cold_and_live(path)
    assert cold.last_activity == live.last_activity == last_valid
    assert ls_json(path)["last_activity"] == str(last_valid)
    [line] = alert_lines(path)
    assert "stalled: no episode for 10 min" in line
    with assert_unchanged(tmp_path):
        table = run_cli("ls", path)
    assert "10 min ago" in table.out


def test_no_readable_time_among_the_newest_rows_is_no_time(tmp_path: Path) -> None:
    """The search for a valid time is bounded (RECENT rows back): beyond it, no time is known."""
    times: list[datetime | str | int] = [datetime.now() - timedelta(hours=1)]
    times += ["later"] * RECENT
    path = run_file(tmp_path / "metrics.db", 1000, times)
    db = opened(path)
    try:
        db.refresh()
        assert db.summaries[1].last_activity is None
        assert db.summaries[1].status(datetime.now()) is RunStatus.STALLED
    finally:
        db.close()


# -- finished: the last episode number reached the plan ----------------------------------------


def test_a_run_numbered_again_from_one_is_not_finished(tmp_path: Path) -> None:
    """Episodes 1-6, then 1-5 again, 10 planned: velora is at episode 5 of 10 (11 rows is not
    "finished 11 of 10")."""
    now = datetime.now()
    numbers = [*range(1, 7), *range(1, 6)]
    path = run_file(tmp_path / "metrics.db", 10, spaced(now, [1.0] * 10), numbers)
    cold, live = cold_and_live(path)
    for summary in (cold, live):
        assert summary.episodes == 11
        assert summary.reached == 5
        assert not summary.finished
        assert summary.status(now) is RunStatus.RUNNING
        assert summary.eta() == timedelta(seconds=5)
    data = ls_json(path)
    assert data["status"] == "running"
    assert not [line for line in alert_lines(path) if "finished" in line]
    assert group_runs([cold], {cold.key: {}})[0].finished(now) == 0


def test_a_run_whose_numbers_reached_the_plan_is_finished_and_says_so(tmp_path: Path) -> None:
    """Episodes 1, 2, 3, 100 with 50 planned: its numbers passed the plan, so it is finished,
    and the alert says what it reached, not "4 of 50"."""
    now = datetime.now()
    path = run_file(tmp_path / "metrics.db", 50, spaced(now, [1.0] * 3), [1, 2, 3, 100])
    cold, live = cold_and_live(path)
    for summary in (cold, live):
        assert summary.finished
        assert summary.status(now) is RunStatus.FINISHED
        assert summary.eta() is None
    assert ls_json(path)["status"] == "finished"
    [line] = alert_lines(path)
    assert "finished: reached episode 100 of 50 planned (4 episodes recorded)" in line
    assert "4 of 50" not in line
    assert group_runs([cold], {cold.key: {}})[0].finished(now) == 1


def test_a_run_that_ends_as_planned_reads_as_before(tmp_path: Path) -> None:
    now = datetime.now()
    path = run_file(tmp_path / "metrics.db", 12, spaced(now, [1.0] * 11))
    [line] = alert_lines(path)
    assert "finished: 12 of 12 planned episodes" in line


def test_an_unreadable_last_number_falls_back_on_the_row_count(tmp_path: Path) -> None:
    now = datetime.now()
    path = run_file(tmp_path / "metrics.db", 3, spaced(now, [1.0] * 2), [1, 2, "three"])
    cold, live = cold_and_live(path)
    for summary in (cold, live):
        assert summary.reached == 3
        assert summary.finished


# -- inf/NaN or text in a reward, loss or moving average/std -----------------------------------


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("reward_moving_avg", "oops"),
        ("reward_moving_avg", -math.inf),
        ("reward_moving_std", math.inf),
        ("actor_loss", b"\x00"),
    ],
)
def test_the_mark_counts_what_the_readme_says(tmp_path: Path, column: str, value: Any) -> None:
    """The README's `!`: rows holding inf/NaN or text in a reward, loss or moving average/std
    (a moving average was not counted); the scan of a first load and the live path count the
    same rows, and the alert says the same."""
    now = datetime.now()
    path = tmp_path / "metrics.db"
    run_file(path, 100, spaced(now, [1.0] * 4), **{column: [1.0, 1.0, value, 1.0, 1.0]})
    cold, live = cold_and_live(path)
    assert cold.nonfinite == live.nonfinite == 1
    assert ls_json(path)["nonfinite_episodes"] == 1
    [line] = alert_lines(path)
    assert "inf, NaN or text in a reward, loss or moving average/std (1 episodes so far)" in line
