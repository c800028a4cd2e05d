"""A run's health: what evaluating the rules (report/alerts.py) costs per new episode.

Rows of a synthetic 20,000-episode run (tests/support/curves.py: a learning curve with a loss
spike, lengths and times) are fed to one run's rules as the app and `alerts -f` feed them, and
the time per episode is the total over the rows (best of N rounds). Goal: <= 0.1 ms an episode.
Baseline, in the same run: reading the same rows' numbers once each (a loop that touches every
field the rules read), so the ratio says what the rules add to merely looking at a row. Also
printed: a first look at a long run (its newest HISTORY rows evaluated), from EpisodeRows and
from the values MetricsDatabase.latest_health reads (RunHealth.feed_values: what the app and
the commands evaluate; the reading itself is in bench/ls_speed.py).

`.venv/bin/python bench/health.py` (also a step of bench/run_all.py).
"""

from __future__ import annotations

import math
import time

from bench.common import Metric, load_note, print_header
from tests.support.curves import Curve, rows
from velora_tui.data.database import HealthValues, row_health_values
from velora_tui.data.records import EpisodeRow
from velora_tui.report.alerts import HISTORY, HealthRules, RunHealth, evaluated

GOAL = 0.1e-3  # seconds per episode
EPISODES = 20_000


def touch(data: list[EpisodeRow]) -> float:
    """The baseline: every field the rules read, read once, for every row."""
    total = 0.0
    for row in data:
        total += row.reward_moving_avg + row.reward_moving_std + row.critic_loss + row.actor_loss
        if row.entropy_loss is not None and math.isfinite(row.entropy_loss):
            total += row.entropy_loss
        if row.created_at is not None:
            total += row.created_at.timestamp() + (row.length or 0)
    return total


def as_values(data: list[EpisodeRow]) -> list[HealthValues]:
    """The rows as MetricsDatabase.latest_health hands them over."""
    return [row_health_values(row) for row in data]


def main(rounds: int = 5) -> list[Metric]:
    print_header(f"health rules ({load_note()})")
    data = rows(Curve(episodes=EPISODES, spike_at=EPISODES // 2, steps_per_second=400.0))
    feed_times, base_times = [], []
    for _ in range(rounds):
        health = RunHealth(HealthRules(), 475.0)
        started = time.perf_counter()
        for row in data:
            health.feed(row)
        feed_times.append((time.perf_counter() - started) / len(data))
        started = time.perf_counter()
        touch(data)
        base_times.append((time.perf_counter() - started) / len(data))
    per, base = min(feed_times), min(base_times)
    looks, value_looks = [], []
    past = as_values(data[-HISTORY:])
    for _ in range(rounds):
        started = time.perf_counter()
        evaluated(HealthRules(), 475.0, data[-HISTORY:])
        looks.append(time.perf_counter() - started)
        started = time.perf_counter()
        RunHealth(HealthRules(), 475.0).feed_values(past)
        value_looks.append(time.perf_counter() - started)
    first_look, value_look = min(looks), min(value_looks)
    print(
        f"rules per new episode: best {per * 1e6:.1f} us ({EPISODES:,} episodes, {rounds} rounds)"
    )
    print(f"baseline (reading the same fields): {base * 1e6:.2f} us; ratio {per / base:.1f}x")
    print(
        f"first look at a long run ({HISTORY} newest rows, best of {rounds}):"
        f" {first_look * 1e3:.2f} ms from EpisodeRows, {value_look * 1e3:.2f} ms from"
        " latest_health's values"
    )
    return [
        Metric(
            "health rules, per new episode (best of rounds)",
            f"<= {GOAL * 1e3:.1f} ms",
            f"{per * 1e3:.4f} ms ({per / base:.0f}x reading its fields)",
            per <= GOAL,
        ),
        Metric(
            f"health, first look at a run ({HISTORY} newest rows)",
            "-",
            f"{first_look * 1e3:.1f} ms (values: {value_look * 1e3:.1f} ms)",
        ),
    ]


if __name__ == "__main__":
    main()
