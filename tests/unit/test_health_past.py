"""A run's past as the commands evaluate it (report/alerts.py's evaluated_past, read with
MetricsDatabase.latest_health, no EpisodeRow a row): the same health, to the last window
value, as the plain path (history_rows fed one EpisodeRow at a time) on hostile files: NaN,
inf, text, blobs and NULL in every column the rules read, times the platform cannot convert,
velora 0.1.1 files without entropy. And the loss window's MAD, found without sorting the
deviations, is the sorted one's exactly."""

from __future__ import annotations

import math
import random
import sqlite3
from collections import deque
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.curves import Curve, rows
from tests.support.databases import velora_ddl
from tests.support.reading import FarFiles
from velora_tui.data.database import FAR_READS, health_values, row_health_values
from velora_tui.data.monitor import Monitor
from velora_tui.data.queries import HEALTH_COLUMNS
from velora_tui.data.records import EPISODE_FIELDS, EpisodeRow
from velora_tui.report.alerts import (
    MAD_EVERY,
    MAD_SIGMA,
    HealthRules,
    HealthTracker,
    RunHealth,
    _LossWindow,
    evaluated,
    evaluated_past,
    history_rows,
)

examples = settings(max_examples=40, deadline=None, derandomize=True)

# What SQLite hands back from a number or time column velora never wrote that way.
HOSTILE: tuple[Any, ...] = (
    None,
    math.nan,
    math.inf,
    -math.inf,
    -0.0,
    1e308,
    -1e308,
    5e-324,
    "abc",
    "",
    " 12.5 ",
    "nan",
    "-inf",
    "1e400",
    b"\x00\xff",
    b"2026-11-24 23:00:00",  # a time as bytes: hours after the curves' rows
    2**62,
    -(2**62),
    True,
    "0001-01-01 00:00:00",  # a time that timestamp() cannot say in any zone
    "9999-12-31 23:59:59",
    "2026-11-24 09:00:00+05:00",
    "2026-11-24T09:00:00",
    " 2026-11-24 09:00:00 ",
    "yesterday",
    12345,
)
STORED = st.one_of(
    st.sampled_from(HOSTILE),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.text(max_size=12),
    st.binary(max_size=6),
)


def state(health: RunHealth) -> dict[str, str]:
    """Everything a run's health holds, its loss windows' values included (repr: NaN is
    equal to itself there)."""
    held = {
        name: repr(value)
        for name, value in vars(health).items()
        if name != "losses" and not isinstance(value, _LossWindow)
    }
    for name, window in health.losses.items():
        held[name] = repr(
            (list(window.values), window.order, window.mad, window.mad_age, window.last_spike)
        )
    held["json"] = repr(health.to_json())
    held["note"] = repr((health.mark(), health.note(), health.current()))
    return held


@examples
@given(st.lists(STORED, min_size=len(EPISODE_FIELDS), max_size=len(EPISODE_FIELDS)))
def test_health_values_are_what_an_episode_row_makes_of_them(stored: list[Any]) -> None:
    stored[0] = abs(stored[0]) if isinstance(stored[0], int) else 7  # an id is an integer
    row = EpisodeRow.from_stored(stored)
    by_name = dict(zip(EPISODE_FIELDS, stored, strict=True))
    [fast] = health_values([[by_name[name] for name in HEALTH_COLUMNS]])
    plain = row_health_values(row)
    assert repr(fast) == repr(plain)
    assert [type(value) for value in fast] == [type(value) for value in plain]


def write_hostile(path: Path, schema: str, seed: int, runs: int = 3) -> Path:
    """Curves with a loss spike (velora's columns, NOT NULL taken off: a writer other than
    velora's), one value in ten of the columns the rules read replaced by a hostile one."""
    pick = random.Random(seed)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN")
        for statement in velora_ddl(schema).replace(" NOT NULL", "").split(";"):
            if statement.strip():
                conn.execute(statement)
        columns = [
            name for name in EPISODE_FIELDS[1:] if schema != "0.1.1" or name != "entropy_loss"
        ]
        for exp_id in range(1, runs + 1):
            conn.execute(
                "INSERT INTO experiment (agent, env, config, created_at) VALUES (?, ?, ?, ?)",
                ("PPO", "CartPole-v1", "{}", "2026-11-24 09:00:00"),
            )
            curve = Curve(seed=seed + exp_id, episodes=700, spike_at=400, steps_per_second=400.0)
            for row in rows(curve, experiment_id=exp_id):
                values = {name: getattr(row, name) for name in columns}
                values["created_at"] = str(row.created_at)
                for name in ("episode_num", *HEALTH_COLUMNS[2:]):
                    if name in values and pick.random() < 0.1:
                        values[name] = pick.choice(HOSTILE)
                conn.execute(
                    f"INSERT INTO episode ({', '.join(values)})"
                    f" VALUES ({', '.join('?' * len(values))})",
                    list(values.values()),
                )
        conn.execute("COMMIT")
    finally:
        conn.close()
    return path


@pytest.mark.parametrize("schema", ["0.2.0", "0.1.1"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_past_read_fast_is_the_past_read_plain(tmp_path: Path, schema: str, seed: int) -> None:
    db = write_hostile(tmp_path / "metrics.db", schema, seed)
    monitor = Monitor([db])
    try:
        monitor.refresh()
        keys = sorted(summary.key for summary in monitor.summaries())
        assert len(keys) == 3
        tight = HealthRules(spike_window=20, spike_min=5, spike_factor=3.0, entropy_min=5)
        for rules in (HealthRules(), tight.checked()):
            for key in keys:
                for limit in (1, 60, 300, 5000):
                    for target in (None, 300.0, -50.0):
                        fast = evaluated_past(monitor, key, rules, target, limit)
                        plain = evaluated(rules, target, history_rows(monitor, key, limit))
                        assert state(fast) == state(plain), (key, limit, target)
                        assert fast.count == min(limit, 700)
    finally:
        monitor.close()


def test_ls_and_alerts_read_the_past_as_the_app_does(tmp_path: Path) -> None:
    """HealthTracker.read_past (`ls --json`, `alerts`) on a hostile file: each run's health as
    evaluating its history_rows one by one makes it."""
    db = write_hostile(tmp_path / "metrics.db", "0.2.0", 9)
    monitor = Monitor([db])
    try:
        monitor.refresh()
        summaries = monitor.summaries()
        tracker = HealthTracker()
        tracker.read_past(monitor, summaries, 300)
        for summary in summaries:
            plain = evaluated(
                tracker.rules, tracker.target(summary), history_rows(monitor, summary.key, 300)
            )
            read = tracker.get(summary.key)
            assert read is not None
            assert read.to_json() == plain.to_json()
            assert read.events == plain.events
    finally:
        monitor.close()


def test_a_time_the_platform_cannot_convert_is_left_out_of_the_rate() -> None:
    """Year 1 as a naive local time: `timestamp()` raises ValueError in every zone (year
    9999 too, east of UTC); `ls --json` and `alerts` stopped with an internal error on it."""
    health = RunHealth(HealthRules(), 10.0)
    for when in (datetime(1, 1, 1), None, datetime(1, 1, 1, 12)):
        row = EpisodeRow(health.count + 1, 1, None, 1.0, 10, 1.0, 0.0, 0.5, 0.5, 0.1, when)
        assert health.feed(row) == []
    assert health.count == 3
    assert health.started == math.inf  # no time reached the rate rule


def reference_mad(order: Sequence[float], median: float) -> float:
    """The MAD as written before: every deviation, sorted."""
    deviations = sorted([abs(v - median) for v in order])
    n, half = len(deviations), len(deviations) // 2
    return deviations[half] if n % 2 else (deviations[half - 1] + deviations[half]) / 2


FINITE = st.floats(allow_nan=False, allow_infinity=False)
SMALL = st.sampled_from([0.0, -0.0, 1.0, -1.0, 2.0, 0.5, 1e308, -1e308, 5e-324])


@settings(max_examples=400, deadline=None, derandomize=True)
@given(st.lists(st.one_of(FINITE, SMALL), min_size=1, max_size=80), st.data())
def test_the_mad_is_the_sorted_deviations_median(values: list[float], data: st.DataObject) -> None:
    window = _LossWindow(len(values))
    window.order = sorted(values)
    n, half = len(values), len(values) // 2
    order = window.order
    median = order[half] if n % 2 else (order[half - 1] + order[half]) / 2
    for centre in (median, data.draw(st.sampled_from(order))):
        got, want = window.exact_mad(centre), reference_mad(order, centre)
        assert repr(got) == repr(want)


def reference_spikes(values: list[float], rules: HealthRules) -> list[int]:
    """docs/health.md's loss spike rule written plainly: each value against the median and
    the MAD (worked out again every MAD_EVERY values, and exactly before a spike is said) of
    the values before it in the window; the episodes of the spikes said."""
    window: deque[float] = deque(maxlen=rules.spike_window)
    mad, age, last, said = math.nan, MAD_EVERY, None, []
    for count, value in enumerate(values, 1):
        if len(window) >= rules.spike_min:
            ordered = sorted(window)
            n, half = len(ordered), len(ordered) // 2
            median = ordered[half] if n % 2 else (ordered[half - 1] + ordered[half]) / 2
            if age >= MAD_EVERY or math.isnan(mad):
                mad, age = reference_mad(ordered, median), 0
            scale = max(MAD_SIGMA * mad, 1e-6 * abs(median), 1e-12)
            distance = abs(value - median)
            if distance > rules.spike_factor * scale:
                mad, age = reference_mad(ordered, median), 0
                scale = max(MAD_SIGMA * mad, 1e-6 * abs(median), 1e-12)
            if distance > rules.spike_factor * scale:
                if last is None or count - last > rules.spike_cooldown:
                    said.append(count)
                last = count
        window.append(value)
        age += 1
    return said


@pytest.mark.parametrize("seed", range(6))
def test_loss_spikes_are_the_plain_rules_spikes(seed: int) -> None:
    """Noisy losses and a low factor: many values near the line, each decided as the rule
    written plainly decides it (the rules skip the exact check for values well inside it)."""
    pick = random.Random(seed)
    rules = HealthRules(spike_window=40, spike_min=10, spike_factor=2.5, spike_cooldown=3)
    losses = [
        math.exp(pick.gauss(0.0, 0.6)) * (1 + (pick.random() < 0.02) * 5) for _ in range(3000)
    ]
    losses[100:140] = [1.0] * 40  # a flat stretch: MAD 0
    health = RunHealth(rules, None)
    for index, loss in enumerate(losses, 1):
        health.feed(EpisodeRow(index, 1, index, 1.0, 10, 1.0, 0.0, 0.5, loss, None, None))
    said = [event.episode for event in health.events if event.kind == "loss_spike"]
    found = reference_spikes(losses, rules)
    assert len(found) > 50
    assert said == found[-len(said) :]  # the run keeps its newest 50 events


def test_a_far_files_runs_are_read_several_at_once(tmp_path: Path) -> None:
    """A remote host is asked FAR_READS runs' past at once: the same health as read here."""
    db = write_hostile(tmp_path / "metrics.db", "0.2.0", 4, runs=20)
    batches: list[int] = []
    here, far = Monitor([db]), Monitor([db], files=FarFiles(batches))
    try:
        trackers = []
        for monitor in (here, far):
            monitor.refresh()
            tracker = HealthTracker()
            tracker.read_past(monitor, monitor.summaries(), 300)
            trackers.append(tracker)
        assert len(here.summaries()) == 20
        for summary in here.summaries():
            plain, batched = (t.get(summary.key) for t in trackers)
            assert plain is not None
            assert batched is not None
            assert batched.to_json() == plain.to_json()
            assert batched.events == plain.events
        assert batches == [FAR_READS, 20 - FAR_READS]
    finally:
        here.close()
        far.close()
