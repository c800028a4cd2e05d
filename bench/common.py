"""Shared helpers for the benchmarks: a big velora-shaped database, percentiles, subprocesses.

Every script in bench/ prints numbers; none of them is a pass/fail test. Run them from the
repository root with the project's virtualenv, e.g. `.venv/bin/python bench/ls_speed.py`.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import resource
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO

from velora_tui.simulate import RUNS, VELORA_DDL, RunPlan, make_config

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
OUT = BENCH_DIR / "out"
# Bump when the generated data changes shape, so stale caches are not reused.
DATA_VERSION = 1
TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy stores a naive datetime in SQLite


# -- numbers -------------------------------------------------------------------------------


def percentile(values: Sequence[float], pct: float) -> float:
    """The pct-th percentile (0-100), linearly interpolated (numpy's default). NaN if empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def ms(seconds: float) -> str:
    """Seconds as milliseconds for printing."""
    return "nan" if math.isnan(seconds) else f"{seconds * 1000:.1f} ms"


def ratio(a: float, b: float) -> float:
    return a / b if b else math.nan


# -- a big database ------------------------------------------------------------------------


def big_database(experiments: int = 100, episodes: int = 10_000, *, quiet: bool = False) -> Path:
    """A velora 0.2.0 metrics.db with `experiments` x `episodes` rows, built once and cached."""
    path = OUT / f"metrics-v{DATA_VERSION}-{experiments}x{episodes}.db"
    if path.exists():
        return path
    OUT.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    fd, tmp_name = tempfile.mkstemp(prefix=path.stem, suffix=".tmp", dir=OUT)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        tmp.unlink()
        build_database(tmp, experiments, episodes)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    if not quiet:
        size = path.stat().st_size / 1e6
        print(
            f"built {path.relative_to(REPO)} ({experiments * episodes:,} episodes, {size:.0f} MB)"
            f" in {time.perf_counter() - started:.1f} s",
            file=sys.stderr,
        )
    return path


def build_database(path: Path, experiments: int, episodes: int, seed: int = 7) -> None:
    """Velora's exact DDL (indexes first, as velora has them), one transaction, executemany."""
    rng = random.Random(seed)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=OFF")  # a build, not a live file: no journal needed
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("BEGIN")
        for statement in VELORA_DDL.split(";"):
            if statement.strip():
                conn.execute(statement)
        # Runs one after another, the last one ending a minute ago; 0.3-3 s per episode.
        intervals = [rng.uniform(0.3, 3.0) for _ in range(experiments)]
        total = sum(i * episodes + 120.0 for i in intervals)
        clock = datetime.now() - timedelta(seconds=total + 60.0)
        for index, interval in enumerate(intervals):
            agent, env, ceiling = RUNS[index % len(RUNS)]
            # Most runs stopped before their planned total; every fifth finished.
            planned = episodes if index % 5 == 0 else episodes + rng.randint(1, 4) * 2_500
            plan = RunPlan(agent, env, planned, episodes, ceiling, seed * 1000 + index)
            cursor = conn.execute(
                "INSERT INTO experiment (agent, env, config, created_at) VALUES (?, ?, ?, ?)",
                (agent, env, make_config(plan), clock.strftime(TIME_FORMAT)),
            )
            exp_id = cursor.lastrowid
            assert exp_id is not None
            clock += timedelta(seconds=2.0)
            conn.executemany(
                "INSERT INTO episode (experiment_id, episode_num, reward, length,"
                " reward_moving_avg, reward_moving_std, actor_loss, critic_loss, entropy_loss,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                fast_episodes(plan, exp_id, clock, interval),
            )
            clock += timedelta(seconds=interval * episodes + 118.0)
        conn.execute("COMMIT")
    finally:
        conn.close()


def fast_episodes(
    plan: RunPlan, exp_id: int, start: datetime, interval: float
) -> Iterator[tuple[int, int, float, int, float, float, float, float, float, str]]:
    """velora_tui.simulate.episodes' learning curve, with O(1) moving stats (it is O(window))."""
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


def create_schema(path: Path) -> None:
    """An empty velora database (the file exists, tables created), as velora leaves it at start."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.executescript(VELORA_DDL)
    finally:
        conn.close()


@contextlib.contextmanager
def scratch_dir(prefix: str, *, tmpfs: bool = False) -> Iterator[Path]:
    """A fresh directory under bench/out/ (same filesystem as the repo), removed afterwards.

    With `tmpfs`, in /dev/shm when there is one: there fsync costs nothing, so a writer can
    reach thousands of commits a second (on this machine's disk it tops out near 700/s).
    """
    shm = Path("/dev/shm")
    parent = shm if tmpfs and shm.is_dir() and os.access(shm, os.W_OK) else OUT
    parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=prefix, dir=parent) as name:
        yield Path(name)


# -- subprocesses --------------------------------------------------------------------------


def velora_tui_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "velora_tui", *args]


def child_env() -> dict[str, str]:
    """The environment for timed subprocesses: bytecode cached (under bench/out/), as installed.

    Without this, PYTHONDONTWRITEBYTECODE (set in some sandboxes) makes every run recompile
    velora_tui's sources, which a user's installed copy never does.
    """
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(OUT / "pycache")
    return env


def load_note() -> str:
    """The 1-minute load average: how noisy this run may be (it counts processes of other
    sessions on this machine too, which `ps` may not show)."""
    try:
        load = Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "load average unknown"
    return f"load average {load} on {os.cpu_count()} cores"


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a live process has used so far (Linux /proc), NaN if unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop_process(proc: subprocess.Popen[bytes], grace: float = 5.0) -> int:
    """SIGTERM, then SIGKILL after `grace` seconds. Returns the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


@contextlib.contextmanager
def process(
    command: Sequence[str], *, stdout: int | IO[bytes] | None, stderr: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """A subprocess stopped (SIGTERM, then SIGKILL) on exit; its stderr goes to a file."""
    with stderr.open("wb") as errors:
        proc = subprocess.Popen(command, stdout=stdout, stderr=errors, env=child_env())
        try:
            yield proc
        finally:
            stop_process(proc)
            if proc.stdout is not None:
                proc.stdout.close()


@contextlib.contextmanager
def simulator(
    db: Path,
    *,
    rate: float,
    episodes: int,
    commit_log: Path,
    extra: Sequence[str] = (),
) -> Iterator[subprocess.Popen[bytes]]:
    """`velora-tui simulate` as a subprocess; the commit log gets 'episode_id unix_time' lines.

    Its stderr goes next to the commit log (`.stderr`).
    """
    command = velora_tui_command(
        "simulate",
        str(db),
        "--rate",
        str(rate),
        "--episodes",
        str(episodes),
        "--commit-log",
        str(commit_log),
        *extra,
    )
    stderr = commit_log.with_name(commit_log.name + ".stderr")
    with process(command, stdout=subprocess.DEVNULL, stderr=stderr) as proc:
        yield proc


def read_commit_log(path: Path) -> dict[int, float]:
    """episode id -> unix time of its commit, from a simulator commit log."""
    commits: dict[int, float] = {}
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            parts = line.split()
            if len(parts) == 2:
                commits[int(parts[0])] = float(parts[1])
    return commits


@dataclass
class LineCollector:
    """Reads a stream line by line in a thread, stamping each line with time.time() on arrival."""

    stream: IO[bytes]
    lines: list[tuple[float, bytes]] = field(default_factory=list)
    _changed: threading.Condition = field(default_factory=threading.Condition)
    _thread: threading.Thread | None = None

    def start(self) -> LineCollector:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        for line in iter(self.stream.readline, b""):
            stamp = time.time()
            with self._changed:
                self.lines.append((stamp, line))
                self._changed.notify_all()

    def wait_for(self, count: int, timeout: float) -> bool:
        """Wait until at least `count` lines arrived. False on timeout."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.lines) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
        return True

    def join(self, timeout: float = 5.0) -> None:
        if self._thread is not None:
            self._thread.join(timeout)


def wait_for_lines(path: Path, count: int, timeout: float, interval: float = 0.01) -> int:
    """Poll a file until it has `count` complete lines; returns how many it has at the end."""
    deadline = time.monotonic() + timeout
    lines = 0
    while True:
        with contextlib.suppress(FileNotFoundError):
            lines = path.read_bytes().count(b"\n")
        if lines >= count or time.monotonic() >= deadline:
            return lines
        time.sleep(interval)


def print_header(title: str) -> None:
    print(f"\n== {title} ==", flush=True)


@dataclass(frozen=True, slots=True)
class Metric:
    """One line of the summary table."""

    name: str
    goal: str
    measured: str
    met: bool | None = None  # None: informational, no goal

    def verdict(self) -> str:
        return "" if self.met is None else ("yes" if self.met else "**no**")


def best_and_median(samples: Sequence[float]) -> tuple[float, float]:
    return (min(samples) if samples else math.nan), median(samples)


def time_command(command: Sequence[str], runs: int, *, warmup: int = 1) -> list[float]:
    """Wall time of a command (stdout discarded), `runs` times after `warmup` untimed runs."""
    samples: list[float] = []
    for index in range(warmup + runs):
        started = time.perf_counter()
        result = subprocess.run(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=child_env()
        )
        elapsed = time.perf_counter() - started
        if result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(command)} exited {result.returncode}: {result.stderr.decode()[-500:]}"
            )
        if index >= warmup:
            samples.append(elapsed)
    return samples


def _busy_seconds() -> float:
    """CPU seconds all cores spent busy since boot (Linux /proc/stat), NaN if unknown."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return math.nan
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_seconds() -> float:
    """CPU seconds used by this process and its reaped children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


QUIET = 0.15  # other processes' load (cores) below which a run counts as undisturbed


class OtherLoad:
    """How busy the machine was with OTHER processes (not this one or its reaped children)
    over a stretch of time, in cores: 0.0 is a quiet machine, 1.0 a whole core taken.

    Children must have been waited for before `stop()` for their CPU to be counted as ours.
    """

    def __init__(self) -> None:
        self._start = (time.monotonic(), _busy_seconds(), _own_seconds())

    def stop(self) -> float:
        wall = time.monotonic() - self._start[0]
        busy = _busy_seconds() - self._start[1]
        own = _own_seconds() - self._start[2]
        return max(0.0, busy - own) / wall if wall > 0 else math.nan
