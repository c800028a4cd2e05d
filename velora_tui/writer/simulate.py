"""A stand-in for velora's training loop: writes metrics.db exactly the way velora does.

One `experiment` row per run, then one `episode` row per episode, each added through a SQLModel
session and committed on its own; default pysqlite settings (rollback journal, 5 s busy timeout);
naive local `datetime.now()` timestamps; velora-shaped configs with `train_params.n_episodes`.
It is the demo's data and the tests' real writer process.
"""

from __future__ import annotations

import copy
import json
import math
import os
import random
import signal
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import IO, Any

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine

from velora_tui.data.models import Episode, Experiment

# Velora 0.2.0's DDL, as `sqlite3 .schema` prints it (0.1.1 lacks episode.entropy_loss).
VELORA_DDL = """
CREATE TABLE IF NOT EXISTS experiment (
    id INTEGER NOT NULL, agent VARCHAR NOT NULL, env VARCHAR NOT NULL, config VARCHAR NOT NULL,
    created_at DATETIME NOT NULL, PRIMARY KEY (id));
CREATE INDEX IF NOT EXISTS ix_experiment_agent ON experiment (agent);
CREATE INDEX IF NOT EXISTS ix_experiment_env ON experiment (env);
CREATE TABLE IF NOT EXISTS episode (
    id INTEGER NOT NULL, experiment_id INTEGER NOT NULL, episode_num INTEGER NOT NULL,
    reward FLOAT NOT NULL, length INTEGER NOT NULL, reward_moving_avg FLOAT NOT NULL,
    reward_moving_std FLOAT NOT NULL, actor_loss FLOAT NOT NULL, critic_loss FLOAT NOT NULL,
    entropy_loss FLOAT NOT NULL, created_at DATETIME NOT NULL, PRIMARY KEY (id),
    FOREIGN KEY(experiment_id) REFERENCES experiment (id));
CREATE INDEX IF NOT EXISTS ix_episode_episode_num ON episode (episode_num);
CREATE INDEX IF NOT EXISTS ix_episode_experiment_id ON episode (experiment_id);
"""
RUNS = (
    ("NeuroFlow", "CartPole-v1", 500.0),
    ("NeuroFlowCT", "InvertedPendulum-v5", 1000.0),
    ("NeuroFlowCT", "Pendulum-v1", -150.0),
    ("NeuroFlow", "LunarLander-v3", 250.0),
)
CONFIG_TEMPLATE: dict[str, Any] = {
    "agent": "NeuroFlow",
    "env": "CartPole-v1",
    "seed": 64,
    "model_details": {
        "type": "actor-critic",
        "state_dim": 4,
        "actor_neurons": 20,
        "critic_neurons": 64,
        "action_dim": 2,
        "tau": 0.005,
        "gamma": 0.99,
        "action_type": "discrete",
        "target_networks": True,
        "log_std": None,
        "exploration_type": "Entropy",
        "actor": {"active_params": 628, "total_params": 918},
        "critic": {
            "critic1": {"active_params": 565, "total_params": 1247},
            "critic2": {"active_params": 565, "total_params": 1247},
        },
        "entropy": {"lr": 0.0003, "initial_alpha": 1.0, "target": -0.6792842745780945},
    },
    "buffer": {
        "type": "ReplayBuffer",
        "capacity": 1000000,
        "state_dim": 4,
        "action_dim": 1,
        "hidden_dim": 8,
    },
    "torch": {"device": "cpu", "optimizer": "Adam", "loss": "MSELoss"},
    "train_params": {
        "batch_size": 64,
        "n_episodes": 120,
        "window_size": 100,
        "display_count": 40,
        "log_freq": 10,
        "callbacks": None,
        "max_steps": 1000,
        "warmup_steps": 128,
    },
}


@dataclass(frozen=True, slots=True)
class RunPlan:
    agent: str
    env: str
    n_episodes: int
    write: int  # episodes actually written (fewer than n_episodes: the run stops or stalls)
    ceiling: float
    seed: int
    batch_size: int = 64
    window: int = 100


def make_config(plan: RunPlan) -> str:
    config = copy.deepcopy(CONFIG_TEMPLATE)
    config.update(agent=plan.agent, env=plan.env, seed=plan.seed)
    config["train_params"].update(
        n_episodes=plan.n_episodes, batch_size=plan.batch_size, window_size=plan.window
    )
    return json.dumps(config)


def episodes(plan: RunPlan) -> Iterator[dict[str, float | int]]:
    """A plausible learning curve: reward rising with noise, losses decaying, lengths varying."""
    rng = random.Random(plan.seed)
    window: deque[float] = deque([0.0] * plan.window, maxlen=plan.window)
    midpoint, spread = plan.n_episodes * 0.45, max(plan.n_episodes / 8, 1.0)
    floor = 9.0 if plan.ceiling > 0 else plan.ceiling * 8
    for num in range(1, plan.write + 1):
        progress = 1.0 / (1.0 + math.exp(-(num - midpoint) / spread))
        clean = floor + (plan.ceiling - floor) * progress
        reward = round(clean + rng.gauss(0, abs(plan.ceiling - floor) * 0.08), 1)
        if plan.ceiling > 0:
            reward = max(floor, min(plan.ceiling, reward))
        window.append(reward)
        mean = sum(window) / len(window)
        std = math.sqrt(sum((r - mean) ** 2 for r in window) / len(window))
        decay = math.exp(-num / max(plan.n_episodes / 4, 1.0))
        yield {
            "episode_num": num,
            "reward": reward,
            "length": max(1, int(abs(reward)) if plan.ceiling > 0 else 200 + rng.randint(-5, 5)),
            "reward_moving_avg": mean,
            "reward_moving_std": std,
            "actor_loss": -0.5 - 2.5 * (1 - decay) + rng.gauss(0, 0.08),
            "critic_loss": 0.4 + 5.0 * decay + abs(rng.gauss(0, 0.3)),
            "entropy_loss": -0.01 - 0.25 * (1 - decay) + rng.gauss(0, 0.01),
        }


class Writer:
    """The velora side: its engine, its sessions, one commit per row."""

    def __init__(self, path: Path, schema: str = "0.2.0", log: IO[str] | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = create_engine(f"sqlite:///{path}")
        self.has_entropy = schema != "0.1.1"
        ddl = (
            VELORA_DDL
            if self.has_entropy
            else VELORA_DDL.replace("entropy_loss FLOAT NOT NULL, ", "")
        )
        with self.engine.begin() as conn:
            for statement in ddl.split(";"):
                if statement.strip():
                    conn.execute(text(statement))
        self.log = log

    def start(self, plan: RunPlan, created_at: datetime | None = None) -> int:
        with Session(self.engine) as session:
            experiment = Experiment(
                agent=plan.agent,
                env=plan.env,
                config=make_config(plan),
                created_at=created_at or datetime.now(),
            )
            session.add(experiment)
            session.commit()
            session.refresh(experiment)
            assert experiment.id is not None
            return experiment.id

    def add(self, exp_id: int, values: dict[str, float | int], at: datetime | None = None) -> None:
        row = dict(values)
        if not self.has_entropy:
            row.pop("entropy_loss", None)
        # expire_on_commit=False: reading the new id for the log must not cost another SELECT.
        with Session(self.engine, expire_on_commit=self.log is None) as session:
            episode = Episode.model_validate(
                {**row, "experiment_id": exp_id, "created_at": at or datetime.now()}
            )
            session.add(episode)
            session.commit()
            if self.log is not None:
                self.log.write(f"{episode.id} {time.time():.6f}\n")
                self.log.flush()

    def backfill(self, plan: RunPlan, ended_ago: timedelta, interval: timedelta) -> None:
        """A run from the past, its timestamps spaced `interval` apart, ending `ended_ago`."""
        end = datetime.now() - ended_ago
        start = end - interval * plan.write
        exp_id = self.start(plan, created_at=start - timedelta(seconds=2))
        for values in episodes(plan):
            self.add(exp_id, values, at=start + interval * int(values["episode_num"]))


def run(
    path: Path,
    *,
    experiments: int = 1,
    n_episodes: int = 300,
    rate: float = 20.0,
    stall_after: int | None = None,
    parallel: bool = False,
    history: bool = False,
    seed: int = 0,
    schema: str = "0.2.0",
    log: IO[str] | None = None,
    on_episode: Callable[[int, int], None] | None = None,
    parent: int | None = None,
) -> None:
    """Train `experiments` fake runs into `path` at `rate` episodes/s (0: as fast as possible).

    With `parent`, it stops once that process is no longer its parent (the demo app's writer).
    With `stall_after`, the last run stops writing after that many episodes while the process
    stays alive, the way a hung training looks. With `history`, a finished run and a stalled
    one (backdated) are written first, for the demo.
    """
    _exit_on_sigterm()
    # The parent is named by its pid, not taken from os.getppid() here: a parent that died
    # while this process started would leave it writing for good (its parent then init).
    if parent is not None and os.getppid() != parent:
        return
    writer = Writer(path, schema, log)
    if history:
        finished = RunPlan("NeuroFlow", "CartPole-v1", 300, 300, 500.0, seed + 100)
        writer.backfill(finished, timedelta(minutes=12), timedelta(seconds=1.5))
        stalled = RunPlan("NeuroFlowCT", "Pendulum-v1", 800, 180, -150.0, seed + 200)
        writer.backfill(stalled, timedelta(minutes=4), timedelta(seconds=0.8))
    plans = []
    for index in range(experiments):
        agent, env, ceiling = RUNS[index % len(RUNS)]
        last = index == experiments - 1
        write = min(stall_after, n_episodes) if last and stall_after is not None else n_episodes
        plans.append(RunPlan(agent, env, n_episodes, write, ceiling, seed + index))
    groups = [plans] if parallel else [[plan] for plan in plans]
    delay = 1.0 / rate if rate > 0 else 0.0
    next_at = time.monotonic()
    for group in groups:
        streams = [(writer.start(plan), episodes(plan)) for plan in group]
        while streams:
            for exp_id, stream in list(streams):
                values = next(stream, None)
                if values is None:
                    streams.remove((exp_id, stream))
                    continue
                if delay:
                    next_at += delay
                    pause = next_at - time.monotonic()
                    if pause > 0:
                        time.sleep(pause)
                    else:
                        next_at = time.monotonic()
                if parent is not None and os.getppid() != parent:
                    return  # whoever started us (the demo app) is gone
                writer.add(exp_id, values)
                if on_episode is not None:
                    on_episode(exp_id, int(values["episode_num"]))
    while stall_after is not None or parent is not None:
        # A hung training is alive and writes nothing; the demo's writer waits for its app.
        if parent is not None and os.getppid() != parent:
            return
        time.sleep(1)


def _exit_on_sigterm() -> None:
    def handler(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, handler)
