"""Helpers shared by the tests and the benchmarks (plain functions and classes, no fixtures).

- velora-schema files: `build_velora_db` (small files with the simulator's curves and configs),
  `build_big_velora_db` (millions of rows, fast), `hostile_db`, `execute`, `add_episode`.
- `dir_snapshot` / `assert_unchanged`: "this folder is byte-for-byte unchanged", the check
  behind the monitor's first rule: it never changes the file nor creates one
  (docs/reading-rules.md).
- processes: `python_command`, `child_env`, `stop_process`, `Terminal` (a process on a
  pseudo-terminal), `wait_for`.
- numbers: `percentile`, `cpu_seconds`, `read_commit_log`.
- `velora-tui serve`: `Served` (the server as a process), `children`, `command_line`, a real
  browser's `CHROMIUM_ARGS` / `browser_missing`, `PageFrames`, `png_size_and_colours`.

Nothing here imports pytest or Textual at module level: the benchmarks import this module and
measure their own process's memory and start-up.
"""

from __future__ import annotations

import bisect
import contextlib
import fcntl
import hashlib
import heapq
import json
import math
import os
import pty
import random
import shutil
import signal
import sqlite3
import stat
import struct
import subprocess
import sys
import termios
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

from velora_tui.data.connection import change_counter, connect_readonly
from velora_tui.data.database import MetricsDatabase
from velora_tui.data.records import ExperimentSummary, SourceState
from velora_tui.data.series import Series, SeriesReader, thin
from velora_tui.writer.simulate import RUNS, RunPlan, episodes, make_config

if TYPE_CHECKING:
    from playwright.sync_api import Page, WebSocket
    from textual.app import App

PROJECT_ROOT = Path(__file__).resolve().parent.parent
VELORA_FILES = Path(__file__).resolve().parent / "fixtures"
SAMPLE_DB = VELORA_FILES / "sample-0.2.0.db"
SCHEMAS = ("0.2.0", "0.1.1")

# Episodes per experiment id in the sample, a real file written by velora 0.2.0 (what it holds:
# docs/reading-rules.md, "The writer").
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
            try:
                st = file.stat()
            except OSError:  # a symbolic link loop, or a link to nothing
                st = file.lstat()
            if stat.S_ISREG(st.st_mode):
                digest = hashlib.sha256(file.read_bytes()).hexdigest()
            else:  # a FIFO, a socket, a device: never read (a FIFO's open waits for a writer)
                digest = f"<{stat.filemode(st.st_mode)}>"
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


# -- processes ---------------------------------------------------------------------------------


def python_command(*args: str | Path) -> list[str]:
    """`python -m velora_tui ARGS...` with the interpreter running the tests."""
    return [sys.executable, "-m", "velora_tui", *(str(a) for a in args)]


def child_env(*, plain: bool = True, bytecode_cache: Path | None = None) -> dict[str, str]:
    """The environment for a child process: this checkout importable, no debug mode.

    `plain`: output meant to be read by a test (unbuffered lines, no colours). Off for a process
    timed as a user runs it (colours in a terminal cost time too).
    `bytecode_cache`: where the child writes and reuses its bytecode, even where
    PYTHONDONTWRITEBYTECODE is set (some sandboxes set it; every timed start would then
    recompile velora_tui's sources, which a user's installed copy never does).
    """
    env = dict(os.environ)
    env.pop("VELORA_TUI_DEBUG", None)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH", "")) if p
    )
    if plain:
        env["PYTHONUNBUFFERED"] = "1"
        env["NO_COLOR"] = "1"
    if bytecode_cache is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(bytecode_cache)
    return env


def stop_process(proc: subprocess.Popen[Any], grace: float = 5.0) -> int | None:
    """SIGTERM, then SIGKILL if it does not end within `grace` seconds; its pipes closed.

    Returns its exit code (None only if even SIGKILL did not end it within `grace`).
    """
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(grace)
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()
    return proc.returncode


def _controlling_terminal() -> None:
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Terminal:
    """A process on a pseudo-terminal; everything it writes is kept, with when it arrived.

    As over SSH: the process leads a session of its own with the terminal as its controlling
    one (it gets SIGHUP if the terminal goes away). `env` defaults to `child_env(plain=False)`
    with a colour terminal's TERM.
    """

    def __init__(
        self,
        command: Sequence[str],
        size: tuple[int, int] = (120, 40),
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.master, slave = pty.openpty()
        columns, rows = size
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        base = child_env(plain=False) if env is None else dict(env)
        self.started = time.perf_counter()  # just before the process is created
        self.proc = subprocess.Popen(
            command,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=base | {"TERM": "xterm-256color", "COLORTERM": "truecolor"},
            preexec_fn=_controlling_terminal,
        )
        os.close(slave)
        self.output = bytearray()
        # (perf_counter() at a chunk's arrival, length of the output with it), in order.
        self.arrivals: list[tuple[float, int]] = []
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                return
            if not chunk:
                return
            now = time.perf_counter()
            with self.lock:
                self.output += chunk
                self.arrivals.append((now, len(self.output)))

    def mark(self) -> int:
        with self.lock:
            return len(self.output)

    def find(self, text: str, start: int = 0) -> int:
        """Offset of `text` in the output, searched from about `start` (-1: not there yet)."""
        wanted = text.encode()
        with self.lock:
            return self.output.find(wanted, max(0, start - len(wanted)))

    def arrived(self, offset: int) -> float:
        """perf_counter() when the output's byte at `offset` arrived (NaN: not yet)."""
        with self.lock:
            index = bisect.bisect_right(self.arrivals, offset, key=lambda arrival: arrival[1])
            return self.arrivals[index][0] if index < len(self.arrivals) else math.nan

    def shown_at(self, text: str, start: int = 0) -> float:
        """perf_counter() when `text` had wholly arrived (NaN: not yet)."""
        offset = self.find(text, start)
        return math.nan if offset < 0 else self.arrived(offset + len(text.encode()) - 1)

    def wait_for(self, text: str, start: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.find(text, start) >= 0:
                return True
            time.sleep(0.001)
        return False

    def key(self, keys: str, answer: str, timeout: float = 5.0) -> float:
        """Seconds from writing `keys` to `answer` appearing in the output (inf if never)."""
        start = self.mark()
        sent = time.perf_counter()
        os.write(self.master, keys.encode())
        if self.wait_for(answer, start, timeout):
            return time.perf_counter() - sent
        return float("inf")

    def close(self) -> int | None:
        code = stop_process(self.proc)
        os.close(self.master)
        self.reader.join(timeout=2)
        return code


class Spawn(Protocol):
    def __call__(
        self,
        args: Sequence[str | Path],
        *,
        stdout: int | IO[Any] | None = ...,
        stderr: int | IO[Any] | None = ...,
        cwd: Path | None = ...,
    ) -> subprocess.Popen[bytes]: ...


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


def wait_for(
    condition: Callable[[], bool], timeout: float = 10.0, interval: float = 0.02, what: str = ""
) -> None:
    """Poll `condition` until it holds; AssertionError (a test failure) after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or condition}")
        time.sleep(interval)


# -- numbers -----------------------------------------------------------------------------------


def percentile(values: Sequence[float], pct: float) -> float:
    """The pct-th percentile (0-100), linearly interpolated (numpy's default). NaN if empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a live process has used so far (Linux /proc), NaN if unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def read_commit_log(path: Path) -> dict[int, float]:
    """episode id -> unix time of its commit, from a simulator commit log."""
    commits: dict[int, float] = {}
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            parts = line.split()
            if len(parts) == 2:
                commits[int(parts[0])] = float(parts[1])
    return commits


# -- the app -----------------------------------------------------------------------------------


def paced_show_due(app: App[Any]) -> bool:
    """Some view of the current screen has a paced show waiting for the end of its interval
    (see widgets/pacing.py): what is on screen is about to change."""
    from velora_tui.tui.widgets.pacing import Paced  # Textual: only for the tests that need it

    screen = app.screen
    return any(
        isinstance(value, Paced) and value.timer is not None
        for node in (screen, *screen.walk_children())
        for value in vars(node).values()
    )


# -- reading a database in tests -------------------------------------------------------------


def load_series(database: MetricsDatabase, exp_id: int, buckets: int = 200) -> Series:
    """An experiment's series in one go: exact up to `2 * buckets` rows, else `buckets` points."""
    series = SeriesReader(database, exp_id, 2 * buckets).read()
    return series if series.exact else thin(series, buckets)


def query(path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Ground truth, read with the same read-only rules as the reader."""
    conn = connect_readonly(path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def state(db: MetricsDatabase) -> SourceState:
    """The source's state now (a call, so that type checkers do not narrow it)."""
    return db.status.state


def opened(path: Path, *, replay: bool = False, busy_timeout: float = 1.0) -> MetricsDatabase:
    return MetricsDatabase(path, busy_timeout=busy_timeout, replay=replay)


def facts(summary: ExperimentSummary) -> dict[str, Any]:
    """A summary's comparable fields, NaN made comparable."""

    def norm(value: Any) -> Any:
        return "nan" if isinstance(value, float) and math.isnan(value) else value

    names = [
        "id",
        "agent",
        "env",
        "created_at",
        "n_episodes",
        "episodes",
        "first_id",
        "last_id",
        "last_episode_num",
        "last_reward",
        "best_reward",
        "reward_moving_avg",
        "first_activity",
        "last_activity",
        "nonfinite",
    ]
    return {name: norm(getattr(summary, name)) for name in names}


def copy_sample(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "metrics.db"
    shutil.copyfile(SAMPLE_DB, target)
    return target


def add_up(db: MetricsDatabase) -> None:
    """Finish the scan of a first load (what the app does after its first screen)."""
    while db.scan_step() is not None:
        pass
    assert not db.scanning


INSERT_EPISODE = (
    "INSERT INTO episode (experiment_id, episode_num, reward, length, reward_moving_avg,"
    " reward_moving_std, actor_loss, critic_loss, entropy_loss, created_at)"
    " VALUES (1, 500, 2.0, 2, 1.0, 0.0, 0.0, 0.0, 0.0, '2026-11-24 10:00:00')"
)


def header_counter(path: Path) -> int | None:
    fd = os.open(path, os.O_RDONLY)
    try:
        return change_counter(fd)
    finally:
        os.close(fd)


# -- remote hosts: a real OpenSSH server on 127.0.0.1 (tests/test_remote_*.py) ----------------

SSHD = Path("/usr/sbin/sshd")
SSH_ALIASES = 16  # vt-00 ... vt-15: the same server under as many names


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class SshServer:
    """`sshd -D` with its own config, host key, user key and authorized_keys in `folder`, and an
    ssh_config naming it: `vt` (and vt-00 .. vt-15) log in by key, `vt-nokey` offers a key the
    server does not know, `vt-closed` goes to a port nobody listens on."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        for name in ("host_key", "user_key", "other_key"):
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(folder / name)],
                check=True,
            )
        (folder / "authorized_keys").write_text((folder / "user_key.pub").read_text())
        (folder / "sshd_config").write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {folder / 'host_key'}\n"
            f"PidFile {folder / 'sshd.pid'}\nAuthorizedKeysFile {folder / 'authorized_keys'}\n"
            "StrictModes no\nUsePAM no\nPermitRootLogin prohibit-password\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
            "MaxSessions 100\nMaxStartups 100\nLogLevel ERROR\n"
        )
        host_key = (folder / "host_key.pub").read_text().split()
        (folder / "known_hosts").write_text(
            f"[127.0.0.1]:{self.port} {host_key[0]} {host_key[1]}\n"
        )
        common = (
            f"  HostName 127.0.0.1\n  User {os.environ.get('USER') or 'root'}\n"
            f"  UserKnownHostsFile {folder / 'known_hosts'}\n  GlobalKnownHostsFile /dev/null\n"
            "  StrictHostKeyChecking yes\n  IdentitiesOnly yes\n"
        )
        aliases = " ".join(f"vt-{n:02d}" for n in range(SSH_ALIASES))
        (folder / "ssh_config").write_text(
            f"Host vt {aliases}\n  Port {self.port}\n  IdentityFile {folder / 'user_key'}\n"
            + common
            + f"Host vt-nokey\n  Port {self.port}\n  IdentityFile {folder / 'other_key'}\n"
            + common
            + f"Host vt-closed\n  Port {free_port()}\n  IdentityFile {folder / 'user_key'}\n"
            + common
        )
        self.config = folder / "ssh_config"

    def start(self) -> None:
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation
        log = (self.folder / "sshd.log").open("ab")
        self.process = subprocess.Popen(
            [
                str(SSHD),
                "-D",
                "-f",
                str(self.folder / "sshd_config"),
                "-E",
                str(self.folder / "sshd.log"),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
        import socket

        def listening() -> bool:
            with socket.socket() as sock:
                return sock.connect_ex(("127.0.0.1", self.port)) == 0

        wait_for(listening, 10, what="sshd listening")

    def connections(self) -> list[int]:
        """The server's per-connection processes (children of the listener)."""
        if self.process is None:
            return []
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.process.pid:
                found.append(int(entry.name))
        return found

    def drop_connections(self) -> int:
        """Kill every connection (as a dropped network would); the listener stays."""
        pids = self.connections()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return len(pids)

    def stop(self) -> None:
        """The connections and the listener gone (a host that went down)."""
        self.drop_connections()
        if self.process is not None:
            stop_process(self.process)
            self.process = None


# -- seeds and sweeps (groups) -------------------------------------------------------------------

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


# -- velora-tui serve and a real browser (tests/test_serve*.py, bench/serve.py) ----------------

# Chromium from the OS, as the tests and the benchmark start it: headless, as root (no
# sandbox), and without the background traffic (updates, sync, QUIC probes) it would otherwise
# send into a network that has no way out.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TAB_MODULE = "velora_tui.serve.tab"


def chromium_path() -> str | None:
    """The OS's Chromium (Playwright's own download is never used)."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def browser_missing() -> str | None:
    """Why a real-browser test cannot run here, or None when it can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[dev]')"
    if chromium_path() is None:
        return "no Chromium on PATH (apt-get install chromium; .ci/run does it where it can)"
    return None


def children(pid: int) -> set[int]:
    """The live processes whose parent is `pid` (Linux /proc)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(entry.name))
    return found


def command_line(pid: int) -> list[str]:
    """A process's arguments exactly as it was started with them ([] once it is gone)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [os.fsdecode(part) for part in raw.split(b"\0")[:-1]]


class Served:
    """`velora-tui serve --port 0 [ARGS] -- SOURCES` as a process: the URL it prints, its log
    (stderr, in a file), the tabs' app processes it runs."""

    def __init__(
        self,
        sources: Sequence[Path | str],
        log: Path,
        *,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.log = log
        with log.open("wb") as handle:
            self.proc = subprocess.Popen(
                python_command("serve", "--port", "0", *args, "--", *sources),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=handle,
                cwd=cwd,
                env={**child_env(), **(env or {})},
            )
        assert self.proc.stdout is not None
        line = _read_line(self.proc.stdout, timeout)
        if not line.startswith("http://"):
            self.stop()
            raise AssertionError(f"serve printed {line!r}; its log: {self.log_text()}")
        # Whatever else it prints (textual-serve passes an app's stderr on to it) is read, so
        # that a full pipe never holds the server up.
        self.rest = bytearray()
        threading.Thread(target=self._drain, args=(self.proc.stdout,), daemon=True).start()
        self.url = line
        address, _, self.token = line.removeprefix("http://").partition("/?token=")
        self.port = int(address.rsplit(":", 1)[1])
        self.base = f"http://127.0.0.1:{self.port}"
        self.origin = self.base

    def _drain(self, stream: IO[bytes]) -> None:
        with contextlib.suppress(OSError, ValueError):
            while chunk := stream.read1(65536):  # type: ignore[attr-defined]
                self.rest += chunk

    def tabs(self) -> set[int]:
        """The app processes it runs now (one per open websocket)."""
        return {pid for pid in children(self.proc.pid) if TAB_MODULE in command_line(pid)}

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int | None:
        return stop_process(self.proc)


def _read_line(stream: IO[bytes], timeout: float) -> str:
    """One line from a pipe, waiting at most `timeout` seconds ("" if none came)."""
    import select

    deadline = time.monotonic() + timeout
    data = b""
    while not data.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([stream], [], [], left)[0]:
            break
        chunk = os.read(stream.fileno(), 1)
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace").strip()


def png_size_and_colours(data: bytes) -> tuple[int, int, int]:
    """(width, height, distinct colours) of an 8-bit RGB(A), non-interlaced PNG (what
    Chromium's screenshots are): enough to tell a drawn page from a blank one."""
    import zlib

    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    offset, chunks, header = 8, [], b""
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            chunks.append(body)
        offset += 12 + length
    width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", header)
    if depth != 8 or colour_type not in (2, 6) or interlace != 0:
        raise ValueError(f"a PNG of a kind not read here: {depth=} {colour_type=} {interlace=}")
    step = 3 if colour_type == 2 else 4
    raw = zlib.decompress(b"".join(chunks))
    stride = width * step
    previous = bytearray(stride)
    colours: set[bytes] = set()
    for row in range(height):
        start = row * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - step] if i >= step else 0
            up, corner = previous[i], previous[i - step] if i >= step else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                guess = left + up - corner
                near = min((abs(guess - left), 0), (abs(guess - up), 1), (abs(guess - corner), 2))
                line[i] = (line[i] + (left, up, corner)[near[1]]) & 0xFF
        if row % 4 == 0:  # a sample of rows is plenty to count colours
            colours.update(bytes(line[i : i + 3]) for i in range(0, stride, step * 4))
        previous = line
    return width, height, len(colours)


class PageFrames:
    """The websocket frames a Playwright page (sync API) receives: the app's screen as
    terminal output. xterm.js draws it on a canvas, so its text is not in the DOM."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.received: list[bytes] = []
        self.sockets = 0
        page.on("websocket", self._opened)

    def _opened(self, socket: WebSocket) -> None:
        self.sockets += 1
        socket.on("framereceived", self._frame)

    def _frame(self, payload: str | bytes) -> None:
        self.received.append(payload if isinstance(payload, bytes) else payload.encode())

    def mark(self) -> int:
        return len(self.received)

    def text(self, start: int = 0) -> str:
        return b"".join(self.received[start:]).decode("utf-8", "replace")

    def wait_for(self, *needles: str, start: int = 0, timeout: float = 30.0) -> None:
        """Until every needle has arrived in a frame since `start` (Playwright dispatches
        events while it waits, so this waits through it)."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.text(start)
            missing = [needle for needle in needles if needle not in text]
            if not missing:
                return
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{missing} not in the page's frames after {timeout} s"
                    f" ({len(self.received) - start} frames; last: {text[-400:]!r})"
                )
            self.page.wait_for_timeout(50)
