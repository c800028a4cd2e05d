"""Files in velora's schema, built for the tests and the benchmarks: small ones with the
simulator's curves and configs, big ones fast, hostile ones, sweeps; rows added as velora adds
them."""

from __future__ import annotations

import heapq
import json
import math
import random
import shutil
import sqlite3
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from velora_tui.writer.simulate import RUNS, RunPlan, episodes, make_config

if TYPE_CHECKING:
    pass

VELORA_FILES = Path(__file__).resolve().parent.parent / "fixtures"
SAMPLE_DB = VELORA_FILES / "sample-0.2.0.db"
SCHEMAS = ("0.2.0", "0.1.1")

# Episodes per experiment id in the sample, a real file written by velora 0.2.0 (what it holds:
# docs/reading-rules.md, "The writer").
SAMPLE_EPISODES = {1: 120, 2: 40, 3: 60}


@dataclass(frozen=True, slots=True)
class RunSpec:
    """One training run to write: `planned` is config n_episodes, `write` the rows written."""

    planned: int = 10
    write: int | None = None
    agent: str | None = None
    env: str | None = None


class MakeDb(Protocol):
    def __call__(
        self,
        path: Path,
        runs: Sequence[int | RunSpec] = ...,
        *,
        schema: str = ...,
        seed: int = ...,
        start: datetime | None = ...,
        interval: timedelta = ...,
    ) -> Path: ...


def velora_ddl(schema: str = "0.2.0") -> str:
    """Velora's own DDL, as dumped from a real file of that version."""
    if schema not in SCHEMAS:
        raise ValueError(f"unknown velora schema {schema!r}")
    return (VELORA_FILES / f"schema-{schema}.sql").read_text()


def _create_tables(conn: sqlite3.Connection, schema: str) -> None:
    """Velora's tables and indexes, inside the caller's transaction (indexes before any row,
    as velora has them: rows then land in the indexes one by one, as in a real file)."""
    for statement in velora_ddl(schema).split(";"):
        if statement.strip():
            conn.execute(statement)


def _insert_experiment(conn: sqlite3.Connection, plan: RunPlan, created_at: str) -> int:
    cursor = conn.execute(
        "INSERT INTO experiment (agent, env, config, created_at) VALUES (?, ?, ?, ?)",
        (plan.agent, plan.env, make_config(plan), created_at),
    )
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def build_velora_db(
    path: Path,
    runs: Sequence[int | RunSpec] = (10,),
    *,
    schema: str = "0.2.0",
    seed: int = 0,
    start: datetime | None = None,
    interval: timedelta = timedelta(milliseconds=50),
) -> Path:
    """A finished velora-schema file: one experiment per run, rows like velora writes them.

    Written in one transaction (fast); timestamps are naive local text, `interval` apart,
    starting at `start` (default: just long enough ago that the last row is about now).
    With no runs: the file as velora leaves it before its first experiment (tables only).
    """
    specs = [RunSpec(planned=r) if isinstance(r, int) else r for r in runs]
    total = sum(s.planned if s.write is None else s.write for s in specs)
    moment = start or datetime.now() - interval * (total + len(specs))
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN")
        _create_tables(conn, schema)
        for index, spec in enumerate(specs):
            agent, env, ceiling = RUNS[index % len(RUNS)]
            plan = RunPlan(
                spec.agent or agent,
                spec.env or env,
                spec.planned,
                spec.planned if spec.write is None else spec.write,
                ceiling,
                seed + index,
            )
            exp_id = _insert_experiment(conn, plan, str(moment))
            rows = []
            for values in episodes(plan):
                moment += interval
                row = {**values, "experiment_id": exp_id, "created_at": str(moment)}
                if schema == "0.1.1":
                    row.pop("entropy_loss")
                rows.append(row)
            if rows:
                columns = list(rows[0])
                conn.executemany(
                    f"INSERT INTO episode ({', '.join(columns)}) "
                    f"VALUES ({', '.join(':' + c for c in columns)})",
                    rows,
                )
            moment += interval
        conn.execute("COMMIT")
    finally:
        conn.close()
    return path


TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy stores a naive datetime in SQLite
EpisodeRow = tuple[int, int, float, int, float, float, float, float, float, str]


def build_big_velora_db(
    path: Path,
    experiments: int,
    episodes: int,
    *,
    groups: Sequence[int] | None = None,
    seed: int = 7,
) -> None:
    """A velora 0.2.0 file of `experiments` x `episodes` rows (episode_num 1..episodes in each),
    built fast: one transaction, executemany, no journal (a build, not a live file).

    `groups`: sizes of consecutive groups of runs that trained at the same time, their rows
    interleaved by time as parallel runs commit them (the sizes must add up to `experiments`);
    groups follow one another. Default: every run alone, one after another.
    """
    sizes = [1] * experiments if groups is None else list(groups)
    if sum(sizes) != experiments or min(sizes, default=1) < 1:
        raise ValueError(f"groups {sizes} do not split {experiments} experiments")
    rng = random.Random(seed)
    # 0.3-3 s per episode; most runs stopped before their planned total, every fifth finished.
    intervals = [rng.uniform(0.3, 3.0) for _ in range(experiments)]
    plans = []
    for index in range(experiments):
        agent, env, ceiling = RUNS[index % len(RUNS)]
        planned = episodes if index % 5 == 0 else episodes + rng.randint(1, 4) * 2_500
        plans.append(RunPlan(agent, env, planned, episodes, ceiling, seed * 1000 + index))
    # Within a group each run starts 2 s after the one before; its first episode 2 s after its
    # start. Groups are 2 minutes apart; the last one ended a minute ago.
    spans: list[float] = []
    first = 0
    for size in sizes:
        members = range(first, first + size)
        spans.append(max(2.0 * j + 2.0 + intervals[i] * episodes for j, i in enumerate(members)))
        first += size
    clock = datetime.now() - timedelta(seconds=sum(spans) + 118.0 * len(sizes) + 60.0)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("BEGIN")
        _create_tables(conn, "0.2.0")
        first = 0
        for size, span in zip(sizes, spans, strict=True):
            streams = []
            for j, index in enumerate(range(first, first + size)):
                created = clock + timedelta(seconds=2.0 * j)
                exp_id = _insert_experiment(conn, plans[index], created.strftime(TIME_FORMAT))
                start = created + timedelta(seconds=2.0)
                streams.append(fast_episodes(plans[index], exp_id, start, intervals[index]))
            rows = streams[0] if size == 1 else heapq.merge(*streams, key=_episode_time)
            conn.executemany(
                "INSERT INTO episode (experiment_id, episode_num, reward, length,"
                " reward_moving_avg, reward_moving_std, actor_loss, critic_loss, entropy_loss,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            clock += timedelta(seconds=span + 118.0)
            first += size
        conn.execute("COMMIT")
    finally:
        conn.close()


def _episode_time(row: EpisodeRow) -> str:
    return row[9]  # TIME_FORMAT text sorts as the times do


def fast_episodes(
    plan: RunPlan, exp_id: int, start: datetime, interval: float
) -> Iterator[EpisodeRow]:
    """velora_tui.writer.simulate.episodes' learning curve as row tuples with timestamps, with O(1)
    moving stats (the simulator's are O(window): too slow for millions of rows)."""
    rng = random.Random(plan.seed)
    window: deque[float] = deque([0.0] * plan.window, maxlen=plan.window)
    total, squares = 0.0, 0.0
    midpoint, spread = plan.n_episodes * 0.45, max(plan.n_episodes / 8, 1.0)
    floor = 9.0 if plan.ceiling > 0 else plan.ceiling * 8
    noise = abs(plan.ceiling - floor) * 0.08
    moment = start
    for num in range(1, plan.write + 1):
        progress = 1.0 / (1.0 + math.exp(-(num - midpoint) / spread))
        reward = round(floor + (plan.ceiling - floor) * progress + rng.gauss(0, noise), 1)
        if plan.ceiling > 0:
            reward = max(floor, min(plan.ceiling, reward))
        old = window[0]
        window.append(reward)
        total += reward - old
        squares += reward * reward - old * old
        mean = total / plan.window
        std = math.sqrt(max(0.0, squares / plan.window - mean * mean))
        decay = math.exp(-num / max(plan.n_episodes / 4, 1.0))
        length = max(1, int(abs(reward)) if plan.ceiling > 0 else 200 + rng.randint(-5, 5))
        moment += timedelta(seconds=interval * rng.uniform(0.5, 1.5))
        yield (
            exp_id,
            num,
            reward,
            length,
            mean,
            std,
            -0.5 - 2.5 * (1 - decay) + rng.gauss(0, 0.08),
            0.4 + 5.0 * decay + abs(rng.gauss(0, 0.3)),
            -0.01 - 0.25 * (1 - decay) + rng.gauss(0, 0.01),
            moment.strftime(TIME_FORMAT),
        )


def execute(path: Path, sql: str, params: Sequence[Any] = ()) -> int | None:
    """Run one statement as a separate writer (own connection, committed, closed)."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        return conn.execute(sql, params).lastrowid
    finally:
        conn.close()


def add_episode(path: Path, experiment_id: int, **values: Any) -> int:
    """Insert one episode row the way a writer would; `values` override plausible defaults."""
    row: dict[str, Any] = {
        "experiment_id": experiment_id,
        "episode_num": 1,
        "reward": 1.0,
        "length": 10,
        "reward_moving_avg": 1.0,
        "reward_moving_std": 0.0,
        "actor_loss": -0.5,
        "critic_loss": 0.5,
        "entropy_loss": -0.01,
        "created_at": str(datetime.now()),
    }
    row.update(values)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        columns = {str(c[1]) for c in conn.execute("PRAGMA table_info(episode)").fetchall()}
        row = {k: v for k, v in row.items() if k in columns or k in values}
        sql = f"INSERT INTO episode ({', '.join(row)}) VALUES ({', '.join(':' + k for k in row)})"
        rowid = conn.execute(sql, row).lastrowid
    finally:
        conn.close()
    assert rowid is not None
    return rowid


def hostile_db(path: Path) -> Path:
    """Everything SQLite lets a file hold that velora would never write.

    Experiment 1: normal, 5 episodes. 2: markup and escape sequences in agent/env, a malformed
    config, 7 episodes holding inf, -inf, text and blobs in number columns and non-timestamps.
    3: a 10 MB config (n_episodes 77), 1 episode with an out-of-range timestamp. 4: a config
    nested 5000 deep. 5: n_episodes "lots". 6: blob/int/real where text belongs. Plus one
    episode of experiment 99, which has no experiment row.
    """
    build_velora_db(path, [RunSpec(planned=5)])
    experiments = [
        ("[/bold]\x1b[31mEvil\x1b[0m", "Cart\x1b]0;pwned\x07Pole\nv1", "{not json", "nonsense"),
        ("Big", "Env", json.dumps({"train_params": {"n_episodes": 77}, "x": "y" * 10_000_000}), ""),
        ("Deep", "Env", '{"train_params": {"n_episodes": ' + "[" * 5000 + "]" * 5000 + "}}", 1),
        ("Text", "Env", '{"train_params": {"n_episodes": "lots"}}', "0001-01-01 00:00:00+01:00"),
        (b"\x1b[1mblob", 42, 3.5, b"\xff\xfe"),
    ]
    for agent, env, config, created in experiments:
        execute(
            path,
            "INSERT INTO experiment (agent, env, config, created_at) VALUES (?, ?, ?, ?)",
            (agent, env, config, created),
        )
    add_episode(path, 2, episode_num=1, reward=5.0)
    add_episode(path, 2, episode_num=2, reward=math.inf)
    add_episode(path, 2, episode_num=3, reward="abc", created_at="not a timestamp")
    add_episode(path, 2, episode_num="three", reward=-math.inf, created_at="yesterday")
    add_episode(path, 2, episode_num=5, reward=7.5, actor_loss="NaN", created_at=12345)
    add_episode(
        path, 2, episode_num=6, reward=b"\x00\x01", critic_loss=math.inf, created_at=b"\xff"
    )
    add_episode(path, 2, episode_num=7, reward=6.0, length="long", entropy_loss="x")
    add_episode(path, 99, episode_num=1, reward=3.0)  # its experiment row does not exist
    add_episode(path, 3, episode_num=1, reward=2.0, created_at="0001-01-01 00:00:00+01:00")
    return path


SWEEP_BATCH_SIZES = (32, 64, 128)
SWEEP_SEEDS = 5
SWEEP_PLANNED = 200
# Episodes written per run, config by config (ragged: some runs stopped early); the 0 marks
# the one still running.
SWEEP_WRITTEN = ((200, 200, 200, 180, 150), (200, 200, 170, 200, 0), (200, 160, 200, 200, 190))
SWEEP_RUNNING_WRITTEN = 120
SWEEP_CEILINGS = (450.0, 500.0, 300.0)


def build_sweep_db(path: Path, now: datetime | None = None) -> Path:
    """A sweep as velora users run one: 3 configs (`train_params.batch_size` 32, 64, 128) x 5
    seeds, 200 episodes planned; ragged lengths (runs that stopped early), every run finished
    or stopped hours before `now`, except one (batch size 64, the fifth seed) still running:
    its last episode a second before `now`. Rows 1 s apart; the configs differ only in their
    batch size, seed and (for seed 2) `torch.device`."""
    now = now or datetime.now()
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN")
        _create_tables(conn, "0.2.0")
        start = now - timedelta(hours=6)
        for index, batch in enumerate(SWEEP_BATCH_SIZES):
            for seed in range(SWEEP_SEEDS):
                written = SWEEP_WRITTEN[index][seed]
                running = written == 0
                written = SWEEP_RUNNING_WRITTEN if running else written
                plan = RunPlan(
                    "NeuroFlow",
                    "CartPole-v1",
                    SWEEP_PLANNED,
                    written,
                    SWEEP_CEILINGS[index],
                    seed=100 + seed,
                    batch_size=batch,
                    window=20,
                )
                config = json.loads(make_config(plan))
                if seed == 2:
                    config["torch"]["device"] = "cuda:0"
                begin = now - timedelta(seconds=written + 1) if running else start
                cursor = conn.execute(
                    "INSERT INTO experiment (agent, env, config, created_at) VALUES (?, ?, ?, ?)",
                    (plan.agent, plan.env, json.dumps(config), str(begin)),
                )
                exp_id = cursor.lastrowid
                moment = begin
                for values in episodes(plan):
                    moment += timedelta(seconds=1)
                    row = {**values, "experiment_id": exp_id, "created_at": str(moment)}
                    columns = list(row)
                    conn.execute(
                        f"INSERT INTO episode ({', '.join(columns)}) "
                        f"VALUES ({', '.join(':' + c for c in columns)})",
                        row,
                    )
                start = moment + timedelta(seconds=5) if not running else start
        conn.execute("COMMIT")
    finally:
        conn.close()
    return path


def run_file(
    path: Path,
    planned: int,
    times: Sequence[datetime | str | int],
    numbers: Sequence[Any] | None = None,
    **columns: Sequence[Any],
) -> Path:
    """A velora 0.2.0 file of one experiment (`planned` episodes in its config) with one row a
    time of `times` (text and numbers as stored), numbered `numbers`
    (default 1..n); `columns` override a metric column row by row."""
    build_velora_db(path, [RunSpec(planned=planned, write=0)])
    numbers = list(range(1, len(times) + 1)) if numbers is None else list(numbers)
    rows = []
    for index, (num, at) in enumerate(zip(numbers, times, strict=True)):
        row = {
            "experiment_id": 1,
            "episode_num": num,
            "reward": 1.0,
            "length": 10,
            "reward_moving_avg": 1.0,
            "reward_moving_std": 0.0,
            "actor_loss": -0.5,
            "critic_loss": 0.5,
            "entropy_loss": -0.01,
            "created_at": at if not isinstance(at, datetime) else str(at),
        }
        row.update({name: values[index] for name, values in columns.items()})
        rows.append(row)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN")
        names = list(rows[0])
        values = ", ".join(":" + name for name in names)
        conn.executemany(f"INSERT INTO episode ({', '.join(names)}) VALUES ({values})", rows)
        conn.execute("COMMIT")
    finally:
        conn.close()
    return path


def spaced(end: datetime, gaps: Sequence[float]) -> list[datetime]:
    """Times ending at `end`, each `gaps[i]` seconds after the one before."""
    times = [end]
    for gap in reversed(gaps):
        times.append(times[-1] - timedelta(seconds=gap))
    return times[::-1]


def copies(root: Path, count: int, name: str = "run") -> Path:
    """`count` small velora databases (3 episodes of experiment 1, ids 1-3), one per folder
    `root/runs/NAME-NNNNN`, as a sweep of runs leaves them (copies of one: fast)."""
    proto = build_velora_db(root / "proto" / "metrics.db", [3])
    runs = root / "runs"
    for index in range(count):
        folder = runs / f"{name}-{index:05d}"
        folder.mkdir(parents=True)
        shutil.copyfile(proto, folder / "metrics.db")
    return runs
