"""Benchmark helpers: a big velora-shaped database (cached), timed subprocesses, load notes.

Helpers the tests use too (database builders, processes, percentiles) are in tests/support/.

Every script in bench/ prints numbers; none of them is a pass/fail test. Run them from the
repository root with the project's virtualenv, e.g. `.venv/bin/python bench/ls_speed.py`.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from tests.support.databases import build_big_velora_db
from tests.support.processes import child_env, python_command, stop_process

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
OUT = BENCH_DIR / "out"
# Bump when the generated data changes shape, so stale caches are not reused.
DATA_VERSION = 2


# -- numbers -------------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def ms(seconds: float) -> str:
    """Seconds as milliseconds for printing."""
    return "nan" if math.isnan(seconds) else f"{seconds * 1000:.1f} ms"


def ratio(a: float, b: float) -> float:
    return a / b if b else math.nan


# -- a big database ------------------------------------------------------------------------


def big_database(
    experiments: int = 100,
    episodes: int = 10_000,
    *,
    groups: Sequence[int] | None = None,
    quiet: bool = False,
) -> Path:
    """A velora 0.2.0 metrics.db with `experiments` x `episodes` rows, built once and cached
    under bench/out/. `groups`: runs written at the same time (tests.support.build_big_velora_db);
    default all one after another."""
    layout = (
        "" if groups is None else "-" + hashlib.sha1(repr(list(groups)).encode()).hexdigest()[:8]
    )
    path = OUT / f"metrics-v{DATA_VERSION}-{experiments}x{episodes}{layout}.db"
    if path.exists():
        return path
    OUT.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    fd, tmp_name = tempfile.mkstemp(prefix=path.stem, suffix=".tmp", dir=OUT)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        tmp.unlink()
        build_big_velora_db(tmp, experiments, episodes, groups=groups)
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


def timed_env() -> dict[str, str]:
    """The environment for timed subprocesses: as a user runs them (colours, buffered output),
    bytecode cached under bench/out/ (see tests.support.child_env)."""
    return child_env(plain=False, bytecode_cache=OUT / "pycache")


def load_note() -> str:
    """The 1-minute load average: how noisy this run may be (it counts processes of other
    sessions on this machine too, which `ps` may not show)."""
    try:
        load = Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "load average unknown"
    return f"load average {load} on {os.cpu_count()} cores"


def old_checkout(commit: str) -> Path | None:
    """The project's files as of `commit` (git archive, once, in the temp folder: under
    bench/ the linters would check it), to run an older version's command beside today's:
    None without git or that commit."""
    path = Path(tempfile.gettempdir()) / f"velora-tui-bench-{commit}"
    if (path / "velora_tui").is_dir():
        return path
    try:
        archive = subprocess.run(
            ["git", "-C", str(REPO), "archive", "--format=tar", commit],
            capture_output=True,
            check=True,
        )
        path.mkdir(exist_ok=True)
        subprocess.run(["tar", "-x", "-C", str(path)], input=archive.stdout, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return path


def old_env(checkout: Path) -> dict[str, str]:
    """timed_env() for a command of an old checkout (old_checkout): its files, not ours."""
    env = timed_env()
    env["PYTHONPATH"] = str(checkout)
    env["PYTHONPYCACHEPREFIX"] = str(checkout / "pycache")
    return env


@contextlib.contextmanager
def process(
    command: Sequence[str],
    *,
    stdout: int | IO[bytes] | None,
    stderr: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """A subprocess stopped (SIGTERM, then SIGKILL) on exit; its stderr goes to a file."""
    with stderr.open("wb") as errors:
        proc = subprocess.Popen(
            command, stdout=stdout, stderr=errors, env=env or timed_env(), cwd=cwd
        )
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
    command = python_command(
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


# Runs a command and reports its wall time and peak RSS. A child's ru_maxrss counts what its
# parent held when it was forked (the kernel keeps the old memory's high-water mark across
# exec): started from the benchmark's own process it would be at least that process's RSS.
# So the command is started from this small interpreter instead, which times it as well.
LAUNCHER = """
import os, sys, time
started = time.perf_counter()
devnull = [(os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0)]
pid = os.posix_spawnp(sys.argv[1], sys.argv[1:], os.environ, file_actions=devnull)
_, status, usage = os.wait4(pid, 0)
elapsed = time.perf_counter() - started
print(os.waitstatus_to_exitcode(status), elapsed, usage.ru_maxrss)
"""


def run_command(command: Sequence[str]) -> tuple[float, float]:
    """Run a command once (stdout discarded): its wall time in seconds and its peak RSS in MiB.
    Raises if it fails."""
    result = subprocess.run(
        [sys.executable, "-S", "-c", LAUNCHER, *command],
        capture_output=True,
        env=timed_env(),
    )
    try:
        code, elapsed, peak_kib = result.stdout.split()
    except ValueError:
        code, elapsed, peak_kib = b"-1", b"nan", b"nan"
    if result.returncode != 0 or int(code) != 0:
        raise RuntimeError(
            f"{' '.join(command)} exited {int(code)}: {result.stderr.decode()[-500:]}"
        )
    return float(elapsed), float(peak_kib) / 1024


def time_command(command: Sequence[str], runs: int, *, warmup: int = 1) -> list[float]:
    """Wall time of a command (stdout discarded), `runs` times after `warmup` untimed runs."""
    samples = [run_command(command)[0] for _ in range(warmup + runs)]
    return samples[warmup:]


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
