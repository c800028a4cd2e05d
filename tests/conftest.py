"""Shared fixtures: real velora-shaped files, folder snapshots, writer processes.

Everything here is generic on purpose (the app tests reuse it):

- `sample_db`: a private copy of the real velora 0.2.0 sample (the original is never touched).
- `build_velora_db` / `make_db`: velora-schema files of either schema (0.2.0 or 0.1.1), built from
  velora's own DDL dump, with the simulator's learning curves and configs.
- `dir_snapshot` / `assert_unchanged`: "this folder is byte-for-byte unchanged" (promise 1).
- `spawn` / `simulator`: processes (the simulator as a separate writer, the CLI) that are always
  killed at teardown.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any, Protocol

import pytest
from textual.app import App

from velora_tui.simulate import RUNS, RunPlan, episodes, make_config
from velora_tui.widgets.pacing import Paced

PROJECT_ROOT = Path(__file__).resolve().parent.parent
VELORA_FILES = Path(__file__).resolve().parent / "fixtures"
SAMPLE_DB = VELORA_FILES / "sample-0.2.0.db"
SCHEMAS = ("0.2.0", "0.1.1")

# What the sample holds (see /work/shared/velora/README.md).
SAMPLE_EPISODES = {1: 120, 2: 40, 3: 60}


# -- folder snapshots --------------------------------------------------------------------------

Snapshot = dict[str, tuple[str, int, int]]


def dir_snapshot(path: Path) -> Snapshot:
    """Every file and directory below `path`: name -> (sha256, mtime_ns, size).

    Directories are included (sha256 "<dir>") so that a file created and removed again, which
    changes the directory's mtime, is noticed as well.
    """
    snapshot: Snapshot = {}
    root_stat = path.stat()
    snapshot["."] = ("<dir>", root_stat.st_mtime_ns, 0)
    for current, dirs, files in os.walk(path):
        dirs.sort()
        base = Path(current)
        for name in dirs:
            st = (base / name).stat()
            snapshot[(base / name).relative_to(path).as_posix()] = ("<dir>", st.st_mtime_ns, 0)
        for name in sorted(files):
            file = base / name
            st = file.stat()
            digest = hashlib.sha256(file.read_bytes()).hexdigest()
            snapshot[file.relative_to(path).as_posix()] = (digest, st.st_mtime_ns, st.st_size)
    return snapshot


@contextlib.contextmanager
def assert_unchanged(path: Path) -> Iterator[Snapshot]:
    """Fails if anything below `path` (bytes, mtimes, names) differs after the block."""
    before = dir_snapshot(path)
    yield before
    after = dir_snapshot(path)
    assert after == before, f"{path} changed: {_diff(before, after)}"


def _diff(before: Snapshot, after: Snapshot) -> str:
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(k for k in set(before) & set(after) if before[k] != after[k])
    return f"added={added} removed={removed} changed={changed}"


# -- velora-schema files -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunSpec:
    """One training run to write: `planned` is config n_episodes, `write` the rows written."""

    planned: int = 10
    write: int | None = None
    agent: str | None = None
    env: str | None = None


def velora_ddl(schema: str = "0.2.0") -> str:
    """Velora's own DDL, as dumped from a real file of that version."""
    if schema not in SCHEMAS:
        raise ValueError(f"unknown velora schema {schema!r}")
    return (VELORA_FILES / f"schema-{schema}.sql").read_text()


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
    """
    specs = [RunSpec(planned=r) if isinstance(r, int) else r for r in runs]
    total = sum(s.planned if s.write is None else s.write for s in specs)
    moment = start or datetime.now() - interval * (total + len(specs))
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.executescript(velora_ddl(schema))
        conn.execute("BEGIN")
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
            cursor = conn.execute(
                "INSERT INTO experiment (agent, env, config, created_at) VALUES (?, ?, ?, ?)",
                (plan.agent, plan.env, make_config(plan), str(moment)),
            )
            exp_id = cursor.lastrowid
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


@pytest.fixture
def sample_db(tmp_path: Path) -> Path:
    """A private, writable copy of the real velora 0.2.0 sample at tmp_path/metrics.db."""
    target = tmp_path / "metrics.db"
    shutil.copyfile(SAMPLE_DB, target)  # copyfile: contents only, the copy is writable
    return target


@pytest.fixture
def make_db() -> MakeDb:
    """`make_db(path, runs, schema=...)`: build a velora-schema file (see build_velora_db)."""
    return build_velora_db


@pytest.fixture(params=SCHEMAS)
def schema(request: pytest.FixtureRequest) -> str:
    """Parametrize a test over both velora schemas."""
    value: str = request.param
    return value


# -- processes ---------------------------------------------------------------------------------


def python_command(*args: str | Path) -> list[str]:
    """`python -m velora_tui ARGS...` with the interpreter running the tests."""
    return [sys.executable, "-m", "velora_tui", *(str(a) for a in args)]


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("VELORA_TUI_DEBUG", None)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH", "")) if p
    )
    env["PYTHONUNBUFFERED"] = "1"
    env["NO_COLOR"] = "1"
    return env


def stop_process(proc: subprocess.Popen[Any], grace: float = 5.0) -> None:
    """SIGTERM, then SIGKILL if it does not end within `grace` seconds."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            proc.wait(grace)
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


class Spawn(Protocol):
    def __call__(
        self,
        args: Sequence[str | Path],
        *,
        stdout: int | IO[Any] | None = ...,
        stderr: int | IO[Any] | None = ...,
        cwd: Path | None = ...,
    ) -> subprocess.Popen[bytes]: ...


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    """Start a process; every one still alive at teardown is terminated (then killed)."""
    started: list[subprocess.Popen[bytes]] = []

    def start(
        args: Sequence[str | Path],
        *,
        stdout: int | IO[Any] | None = subprocess.DEVNULL,
        stderr: int | IO[Any] | None = subprocess.DEVNULL,
        cwd: Path | None = None,
    ) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [str(a) for a in args],
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            cwd=cwd,
            env=child_env(),
        )
        started.append(proc)
        return proc

    yield start
    for proc in reversed(started):
        stop_process(proc)


class Simulator(Protocol):
    def __call__(
        self,
        db: Path,
        *,
        episodes: int = ...,
        rate: float = ...,
        experiments: int = ...,
        extra: Sequence[str] = ...,
    ) -> subprocess.Popen[bytes]: ...


@pytest.fixture
def simulator(spawn: Spawn, tmp_path_factory: pytest.TempPathFactory) -> Simulator:
    """Start `velora-tui simulate DB` (velora's writing pattern) as a separate process.

    Its stderr goes to a log file outside the database folder; the process is killed at
    teardown.
    """

    def start(
        db: Path,
        *,
        episodes: int = 50,
        rate: float = 0.0,
        experiments: int = 1,
        extra: Sequence[str] = (),
    ) -> subprocess.Popen[bytes]:
        log = tmp_path_factory.mktemp("simulator-log") / "stderr.txt"
        with log.open("wb") as handle:
            return spawn(
                python_command(
                    "simulate",
                    db,
                    "--episodes",
                    str(episodes),
                    "--rate",
                    str(rate),
                    "--experiments",
                    str(experiments),
                    *extra,
                ),
                stderr=handle,
            )

    return start


def wait_for(
    condition: Callable[[], bool], timeout: float = 10.0, interval: float = 0.02, what: str = ""
) -> None:
    """Poll `condition` until it holds; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what or condition}")
        time.sleep(interval)


def paced_shows_waiting(app: App[Any]) -> bool:
    """Some view of the current screen has a paced redraw due (see widgets/pacing.py)."""
    screen = app.screen
    return any(
        isinstance(value, Paced) and value.waiting
        for node in (screen, *screen.walk_children())
        for value in vars(node).values()
    )
