"""A run's health (report/alerts.py): zero alerts on healthy runs, each injected event found
within its stated number of episodes (docs/health.md), NaN/inf/text never crash or trigger,
each event said once."""

from __future__ import annotations

import math
import shutil
import sqlite3
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.curves import START, Curve, rows
from tests.support.databases import SAMPLE_DB
from velora_tui.data.records import EpisodeRow
from velora_tui.data.targets import target_for
from velora_tui.report.alerts import HealthEvent, HealthRules, RunHealth, evaluated
from velora_tui.writer.simulate import RUNS, RunPlan, episodes

RULES = HealthRules()
# How many episodes after the injected event each rule finds it (docs/health.md says why).
WITHIN = {
    "solved": 0,
    "loss_spike": 0,
    "entropy": 30,
    "collapse": RULES.window + RULES.collapse_episodes,
    "plateau": 3 * RULES.plateau_episodes,
}
WARNINGS = {"plateau", "collapse", "loss_spike", "entropy", "slowdown"}
SEEDS = st.integers(min_value=0, max_value=10_000)
examples = settings(max_examples=12, deadline=None, derandomize=True)


def events(
    curve: Curve, target: float | None = None, rules: HealthRules = RULES
) -> list[HealthEvent]:
    health = RunHealth(rules, target)
    found: list[HealthEvent] = []
    for row in rows(curve):
        found.extend(health.feed(row))
    return found


def kinds(found: list[HealthEvent]) -> list[str]:
    return [event.kind for event in found]


@examples
@given(SEEDS, st.floats(min_value=0.02, max_value=0.15), st.integers(min_value=150, max_value=800))
def test_healthy_curves_raise_nothing(seed: int, noise: float, rise: int) -> None:
    curve = Curve(seed=seed, noise=noise, rise=rise, episodes=2000, steps_per_second=400.0)
    assert events(curve) == []
    assert kinds(events(curve, target=380.0)) == ["solved"]


@examples
@given(SEEDS)
def test_healthy_curve_that_reaches_its_target_only_says_solved(seed: int) -> None:
    found = events(Curve(seed=seed, steps_per_second=400.0), target=350.0)
    assert kinds(found) == ["solved"]
    assert found[0].severity == "information"


def test_the_real_velora_sample_is_healthy(tmp_path: Path) -> None:
    copy = tmp_path / "metrics.db"
    shutil.copyfile(SAMPLE_DB, copy)
    conn = sqlite3.connect(f"file:{copy}?mode=ro", uri=True)
    try:
        for exp_id, env in conn.execute("SELECT id, env FROM experiment").fetchall():
            stored = conn.execute(
                "SELECT * FROM episode WHERE experiment_id = ? ORDER BY id", (exp_id,)
            ).fetchall()
            health = evaluated(RULES, target_for(env), map(EpisodeRow.from_stored, stored))
            assert health.events == []
            assert health.count == len(stored)
    finally:
        conn.close()


def test_the_demo_runs_are_healthy() -> None:
    for index, (agent, env, ceiling) in enumerate(RUNS):
        for n in (300, 3000):
            plan = RunPlan(agent, env, n, n, ceiling, index)
            health = RunHealth(RULES, target_for(env))
            for num, values in enumerate(episodes(plan), 1):
                row = EpisodeRow(
                    num,
                    1,
                    num,
                    float(values["reward"]),
                    int(values["length"]),
                    float(values["reward_moving_avg"]),
                    float(values["reward_moving_std"]),
                    float(values["actor_loss"]),
                    float(values["critic_loss"]),
                    float(values["entropy_loss"]),
                    START + timedelta(seconds=num / 4),
                )
                health.feed(row)
            assert {e.kind for e in health.events} <= {"solved"}, (env, n, health.events)


@examples
@given(SEEDS, st.integers(min_value=100, max_value=1400), st.floats(min_value=15.0, max_value=1e4))
def test_a_loss_spike_is_found_at_its_episode(seed: int, at: int, size: float) -> None:
    found = events(Curve(seed=seed, spike_at=at, spike_size=size, steps_per_second=400.0))
    assert kinds(found) == ["loss_spike"]
    assert found[0].episode - at <= WITHIN["loss_spike"]
    assert f"at episode {at}" in found[0].text
    assert "critic loss" in found[0].text
    assert f"the median of the last {min(at - 1, 200)} " in found[0].text


def test_one_spike_does_not_hide_the_next() -> None:
    curve = Curve(seed=3, spike_at=600, steps_per_second=400.0)
    data = rows(curve)
    second = 600 + RULES.spike_cooldown + 10
    data[second - 1] = replace(data[second - 1], critic_loss=data[second - 1].critic_loss * 30)
    health = RunHealth(RULES, None)
    found = [e for row in data for e in health.feed(row)]
    assert [e.episode for e in found] == [600, second]


def test_a_burst_of_spikes_is_one_alert() -> None:
    data = rows(Curve(seed=4, steps_per_second=400.0))
    for num in range(700, 705):
        data[num - 1] = replace(data[num - 1], critic_loss=50.0)
    health = RunHealth(RULES, None)
    assert [e.episode for row in data for e in health.feed(row)] == [700]


@examples
@given(SEEDS, st.integers(min_value=500, max_value=900))
def test_a_collapse_is_found_within_its_stretch(seed: int, at: int) -> None:
    found = events(Curve(seed=seed, collapse_at=at, rise=300, steps_per_second=400.0))
    assert kinds(found) == ["collapse"]
    assert 0 <= found[0].episode - at <= WITHIN["collapse"]


@examples
@given(SEEDS, st.integers(min_value=200, max_value=400))
def test_a_plateau_before_the_target_is_found(seed: int, at: int) -> None:
    curve = Curve(seed=seed, plateau_at=at, episodes=at + 2000, steps_per_second=400.0)
    found = events(curve, target=380.0)
    assert kinds(found) == ["plateau"]
    assert 0 <= found[0].episode - at <= WITHIN["plateau"]
    assert "no new best moving average for 500 episodes" in found[0].text


@examples
@given(SEEDS, st.integers(min_value=150, max_value=600))
def test_an_entropy_collapse_before_the_target_is_found(seed: int, at: int) -> None:
    found = events(Curve(seed=seed, entropy_at=at, steps_per_second=400.0), target=380.0)
    assert kinds(found) == ["entropy", "solved"]
    assert 0 <= found[0].episode - at <= WITHIN["entropy"]


def test_entropy_rule_is_silent_without_an_entropy_column() -> None:
    data = [replace(r, entropy_loss=None) for r in rows(Curve(seed=1, entropy_at=200))]
    health = RunHealth(RULES, 1000.0)
    assert [e for row in data for e in health.feed(row)] == []


@settings(max_examples=10, deadline=None, derandomize=True)
@given(SEEDS, st.floats(min_value=0.05, max_value=0.4))
def test_a_slowdown_is_found_within_its_minutes(seed: int, factor: float) -> None:
    # 400 steps/s and ~400 steps an episode: an episode a second, so 30 minutes in at 1800.
    curve = Curve(
        seed=seed, episodes=3000, steps_per_second=400.0, slow_at=1800, slow_factor=factor
    )
    data = rows(curve)
    health = RunHealth(RULES, None)
    found = [(e, row) for row in data for e in health.feed(row)]
    assert [e.kind for e, _ in found] == ["slowdown"]
    event, row = found[0]
    began = data[1799].created_at
    assert row.created_at is not None
    assert began is not None
    assert row.created_at - began <= timedelta(minutes=RULES.slowdown_minutes)
    assert "steps/min over the last 3 min" in event.text


def test_target_reached_says_its_episode_and_numbers() -> None:
    found = events(Curve(seed=2, steps_per_second=400.0), target=300.0)
    assert kinds(found) == ["solved"]
    first = next(
        r.episode_num
        for r in rows(Curve(seed=2))
        if r.reward_moving_avg >= 300.0 and (r.episode_num or 0) >= 100
    )
    assert found[0].episode == first
    assert found[0].text.startswith(f"solved at episode {first}: moving average")


def test_a_negative_target_waits_for_a_full_window() -> None:
    # Acrobot's -100: the zero-padded moving average starts near 0, above it, for no reason.
    curve = Curve(seed=1, floor=-500.0, ceiling=-450.0, steps_per_second=400.0)
    assert events(curve, target=-100.0) == []


def test_history_already_solved_says_so_honestly() -> None:
    data = rows(Curve(seed=2, steps_per_second=400.0))
    health = evaluated(RULES, 300.0, data[1200:])
    assert health.solved_at == data[1200].episode_num
    assert not health.solved_exact
    assert "or before" in health.events[0].text
    assert health.mark() == "solved"


@given(
    st.lists(
        st.tuples(
            st.sampled_from(
                [
                    "reward_moving_avg",
                    "critic_loss",
                    "actor_loss",
                    "entropy_loss",
                    "reward_moving_std",
                ]
            ),
            st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -1e308, 0.0]),
            st.integers(min_value=0, max_value=1199),
        ),
        max_size=40,
    )
)
@settings(max_examples=30, deadline=None, derandomize=True)
def test_nonfinite_values_never_crash_or_trigger(bad: list[tuple[str, float, int]]) -> None:
    data = rows(Curve(seed=5, episodes=1200, steps_per_second=400.0))
    for name, value, index in bad:
        if not math.isfinite(value):
            change: dict[str, Any] = {name: value}
            data[index] = replace(data[index], **change)
    data[10] = replace(data[10], created_at=None, episode_num=None, length=None)
    health = RunHealth(RULES, None)
    assert [e for row in data for e in health.feed(row)] == []
    assert health.mark() == ""


def test_each_row_counts_once() -> None:
    data = rows(Curve(seed=1, spike_at=500, steps_per_second=400.0))
    health = RunHealth(RULES, None)
    first = [e for row in data for e in health.feed(row)]
    again = [e for row in data for e in health.feed(row)]
    assert len(first) == 1
    assert again == []


def test_rules_out_of_range_are_brought_back() -> None:
    rules = HealthRules(window=-5, spike_factor=math.nan, plateau_episodes=10**12).checked()
    assert rules.window == 1
    assert rules.spike_factor == 2.0
    assert rules.plateau_episodes == 10_000_000


def test_a_compacted_run_keeps_its_state_and_fills_its_windows_again() -> None:
    data = rows(Curve(seed=6, spike_at=1400, steps_per_second=400.0))
    health = evaluated(RULES, 300.0, data[:1000])
    assert health.mark() == "solved"
    health.compact()
    assert health.losses["critic_loss"].order == []
    assert health.mark() == "solved"
    found = [e for row in data[1000:] for e in health.feed(row)]
    assert [(e.kind, e.episode) for e in found] == [("loss_spike", 1400)]
