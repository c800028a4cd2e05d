"""Synthetic training curves for the health rules: healthy ones, and ones with one event
injected at a known episode (a loss spike, a collapse, a plateau, an entropy collapse, a
slowdown, the target reached). As velora writes them: the moving average over a zero-padded
window, one row per episode, times spaced by the episode's steps at the run's step rate."""

from __future__ import annotations

import json
import math
import random
import sqlite3
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from tests.support.databases import velora_ddl
from velora_tui.data.records import EpisodeRow

START = datetime(2026, 11, 24, 9, 0, 0)


@dataclass(frozen=True, slots=True)
class Curve:
    """A run's shape: rewards rise from `floor` to `ceiling` (logistic, centred at `rise`),
    with Gaussian noise of `noise` times the gain; losses decay with multiplicative noise."""

    episodes: int = 1500
    floor: float = 10.0
    ceiling: float = 400.0
    rise: int = 400
    noise: float = 0.08
    window: int = 100
    steps_per_second: float = 2000.0
    seed: int = 0
    # Injections (None: not there)
    spike_at: int | None = None  # critic loss times `spike_size` at this episode
    spike_size: float = 30.0
    collapse_at: int | None = None  # rewards back to the floor from here on
    plateau_at: int | None = None  # rewards stop rising here
    entropy_at: int | None = None  # entropy term times 0.02 from here on
    slow_at: int | None = None  # step rate times `slow_factor` from here on
    slow_factor: float = 0.25


def values(curve: Curve) -> Iterator[tuple[int, float, int, float, float, float, float, float]]:
    """(episode, reward, length, moving avg, moving std, actor, critic, entropy), in order."""
    rng = random.Random(curve.seed)
    window: deque[float] = deque([0.0] * curve.window, maxlen=curve.window)
    gain = curve.ceiling - curve.floor
    spread = max(curve.episodes / 16, 1.0)
    level_at_plateau: float | None = None
    total = squares = 0.0  # of the window, kept as it moves
    for num in range(1, curve.episodes + 1):
        progress = 1.0 / (1.0 + math.exp(-(num - curve.rise) / spread))
        clean = curve.floor + gain * progress
        if curve.plateau_at is not None and num >= curve.plateau_at:
            if level_at_plateau is None:
                level_at_plateau = clean
            clean = level_at_plateau
        if curve.collapse_at is not None and num >= curve.collapse_at:
            clean = curve.floor
        reward = clean + rng.gauss(0.0, abs(gain) * curve.noise)
        total += reward - window[0]
        squares += reward * reward - window[0] * window[0]
        window.append(reward)
        mean = total / curve.window
        std = math.sqrt(max(squares / curve.window - mean * mean, 0.0))
        decay = math.exp(-num / max(curve.episodes / 4, 1.0))
        critic = (0.4 + 5.0 * decay) * math.exp(rng.gauss(0.0, 0.25))
        if curve.spike_at == num:
            critic *= curve.spike_size
        actor = -0.5 - 2.5 * (1 - decay) + rng.gauss(0.0, 0.08)
        entropy = -(0.05 + 0.25 * (1 - decay)) * math.exp(rng.gauss(0.0, 0.1))
        if curve.entropy_at is not None and num >= curve.entropy_at:
            entropy *= 0.02
        length = max(1, int(abs(reward))) if curve.ceiling > 0 else 200
        yield num, reward, length, mean, std, actor, critic, entropy


def rows(curve: Curve, experiment_id: int = 1, first_id: int = 1) -> list[EpisodeRow]:
    """The curve as the rows the data layer hands out."""
    out = []
    at = START
    for index, (num, reward, length, mean, std, actor, critic, entropy) in enumerate(values(curve)):
        rate = curve.steps_per_second
        if curve.slow_at is not None and num >= curve.slow_at:
            rate *= curve.slow_factor
        at += timedelta(seconds=length / rate)
        out.append(
            EpisodeRow(
                first_id + index,
                experiment_id,
                num,
                reward,
                length,
                mean,
                std,
                actor,
                critic,
                entropy,
                at,
            )
        )
    return out


def write_curve(
    path: Path,
    curve: Curve,
    env: str = "CartPole-v1",
    agent: str = "PPO",
    planned: int | None = None,
) -> Path:
    """A velora 0.2.0 file holding one run of this curve, its last row about now; `planned`
    (config n_episodes) defaults to the curve's episodes: a finished run."""
    found = rows(curve)
    shift = datetime.now() - (found[-1].created_at or START) if found else timedelta()
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN")
        for statement in velora_ddl("0.2.0").split(";"):
            if statement.strip():
                conn.execute(statement)
        config = json.dumps(
            {
                "agent": agent,
                "env": env,
                "train_params": {
                    "n_episodes": planned or curve.episodes,
                    "window_size": curve.window,
                },
            }
        )
        conn.execute(
            "INSERT INTO experiment (agent, env, config, created_at) VALUES (?, ?, ?, ?)",
            (agent, env, config, str(START + shift)),
        )
        conn.executemany(
            "INSERT INTO episode (experiment_id, episode_num, reward, length, reward_moving_avg,"
            " reward_moving_std, actor_loss, critic_loss, entropy_loss, created_at)"
            " VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    r.episode_num,
                    r.reward,
                    r.length,
                    r.reward_moving_avg,
                    r.reward_moving_std,
                    r.actor_loss,
                    r.critic_loss,
                    r.entropy_loss,
                    str((r.created_at or START) + shift),
                )
                for r in found
            ],
        )
        conn.execute("COMMIT")
    finally:
        conn.close()
    return path
