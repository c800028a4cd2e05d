"""The fault tests' harness (tests/system/test_faults.py, test_soak.py): readers of every kind
(the change feed in process, `tail -f` as a process) that record what they saw, and writers
that lock, crash or time their commits, as velora's writer would beside them."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import TIMEOUT, Lines, check_output, strict_json
from tests.support.databases import MakeDb
from tests.support.folders import assert_unchanged, dir_snapshot
from tests.support.numbers import percentile
from tests.support.processes import Spawn, Terminal, child_env, python_command, stop_process
from tests.support.waiting import until
from velora_tui.data.feed import ChangeFeed, live_updates
from velora_tui.data.monitor import Monitor
from velora_tui.data.records import SourceState, SourceStatus

HEARTBEAT = 0.2  # in-process feeds: notice a re-made directory within a fraction of a second

SETTLE = 0.5  # after the last expected row: anything delivered twice would show up now

INSERT = (
    "INSERT INTO episode (experiment_id, episode_num, reward, length, reward_moving_avg,"
    " reward_moving_std, actor_loss, critic_loss, entropy_loss, created_at)"
    " VALUES (1, ?, ?, 1, 0.0, 0.0, 0.0, 0.0, 0.0, '2026-11-24 12:00:00')"
)

# A training process that holds an exclusive lock: BEGIN EXCLUSIVE, rows, a long pause, COMMIT.
LOCKING_WRITER = f"""
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=5)
conn.execute("BEGIN EXCLUSIVE")
for index in range(int(sys.argv[2])):
    conn.execute({INSERT!r}, (1000 + index, float(index)))
print("locked", flush=True)
time.sleep(float(sys.argv[3]))
conn.execute("COMMIT")
print("committed", flush=True)
"""


@dataclass(frozen=True, slots=True)
class Seen:
    """One episode a reader handed out."""

    db: Path
    id: int
    experiment_id: int
    episode_num: int | None
    reward: float


@dataclass
class Reader:
    """Monitor + ChangeFeed + live_updates in this process, recording what it hands out."""

    monitor: Monitor
    feed: ChangeFeed
    log: list[Seen | str] = field(default_factory=list)  # rows, and "reset" where one happened
    states: list[SourceStatus] = field(default_factory=list)  # every distinct status, in order
    task: asyncio.Task[None] | None = None

    @classmethod
    def start(cls, sources: Sequence[Path], *, poll: bool) -> Reader:
        monitor = Monitor(list(sources))
        monitor.refresh()  # what is there already is summarised; from now on rows are news
        monitor.start_replaying()
        reader = cls(monitor, ChangeFeed(monitor, poll=poll, heartbeat=HEARTBEAT))
        reader.states.extend(monitor.statuses())
        reader.task = asyncio.create_task(reader._run())
        return reader

    async def _run(self) -> None:
        async for updates in live_updates(self.monitor, self.feed):
            for update in updates:
                if update.reset:
                    self.log.append("reset")
                self.log.extend(
                    Seen(update.db, r.id, r.experiment_id, r.episode_num, r.reward)
                    for r in update.episodes
                )
                status = self.monitor.databases[update.db].status
                if self.states[-1:] != [status]:
                    self.states.append(status)

    @property
    def rows(self) -> list[Seen]:
        return [item for item in self.log if isinstance(item, Seen)]

    @property
    def name(self) -> str:
        return f"in-process {self.feed.mode}"

    def status(self, path: Path) -> SourceStatus:
        return self.monitor.databases[path].status

    async def stop(self) -> None:
        self.feed.stop()
        if self.task is not None:
            await asyncio.wait_for(self.task, 10)
        self.monitor.close()


class Tail:
    """`velora-tui tail -f --json` as a separate process, its stdout and stderr read live."""

    def __init__(
        self,
        spawn: Spawn,
        sources: Sequence[Path],
        *,
        poll: bool = False,
        lines: int = 0,
        command: Sequence[str] | None = None,
    ) -> None:
        args = ["tail", "-f", "--json", "-n", str(lines), *map(str, sources)]
        if poll:
            args.append("--poll")
        full = [*command, *args] if command else python_command(*args)
        self.proc = spawn(full, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert self.proc.stdout is not None
        assert self.proc.stderr is not None
        self.out, self.err = Lines(self.proc.stdout), Lines(self.proc.stderr)
        self.poll = poll

    @property
    def name(self) -> str:
        return "tail -f --poll" if self.poll else "tail -f"

    def take(self, count: int, timeout: float = TIMEOUT) -> list[dict[str, Any]]:
        return [strict_json(line) for line in self.out.take(count, timeout)]

    def wait_err(self, needle: str, timeout: float = TIMEOUT) -> str:
        return self.err.first(needle, timeout)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def finish(self) -> tuple[list[dict[str, Any]], list[str]]:
        """SIGTERM (it must exit 0 at once), then everything it printed."""
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(TIMEOUT) == 0
        out, err = self.out.rest(), self.err.rest()
        check_output("\n".join(out), "\n".join(err))
        return [strict_json(line) for line in out], err


async def each(
    readers: Sequence[Reader], holds: Callable[[Reader], bool], what: str, timeout: float = TIMEOUT
) -> None:
    """Wait until `holds` for every reader."""
    for reader in readers:
        await until(functools.partial(holds, reader), f"{reader.name}: {what}", timeout)


@contextlib.asynccontextmanager
async def readers(*sources: Path) -> AsyncIterator[tuple[Reader, Reader]]:
    """Two in-process readers of `sources`, one watching and one polling; stopped at the end."""
    watching = Reader.start(sources, poll=False)
    polling = Reader.start(sources, poll=True)
    try:
        yield watching, polling
    finally:
        await watching.stop()
        await polling.stop()


def ids(rows: Sequence[Any]) -> list[int]:
    """The ids of rows: JSON objects (tail) or row objects (Seen, EpisodeRow)."""
    return [int(row["id"]) if isinstance(row, dict) else int(row.id) for row in rows]


async def nothing_more_arrives(folder: Path, *fresh: Callable[[], int]) -> None:
    """Wait SETTLE seconds with only readers running: the folder must not change, and no
    reader may hand out anything more (`fresh` are counters of what each one handed out)."""
    counts = [count() for count in fresh]
    with assert_unchanged(folder):
        await asyncio.sleep(SETTLE)
    assert [count() for count in fresh] == counts


async def exclusive_lock(
    tmp_path: Path, spawn: Spawn, make_db: MakeDb, seconds: float, rows: int = 50
) -> None:
    """A writer holds an exclusive lock for `seconds`: every reader says LOCKED while it lasts,
    keeps running (the event loop stays responsive), and then gets every row exactly once."""
    folder = tmp_path / "run"
    path = make_db(folder / "metrics.db", [10])
    tails = [Tail(spawn, [path], lines=1), Tail(spawn, [path], lines=1, poll=True)]
    for tail in tails:
        await asyncio.to_thread(tail.take, 1)
    stalls: list[float] = []

    async def ticker() -> None:
        """How long this event loop goes without running anything (the app's UI would freeze)."""
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.01)
            now = time.monotonic()
            stalls.append(now - last)
            last = now

    ticking = asyncio.create_task(ticker())
    async with readers(path) as (watching, polling):
        locker = spawn(
            [sys.executable, "-c", LOCKING_WRITER, str(path), str(rows), str(seconds)],
            stdout=subprocess.PIPE,
        )
        assert locker.stdout is not None
        said = Lines(locker.stdout)
        await asyncio.to_thread(said.take, 1)  # "locked"
        locked_at = time.monotonic()
        for tail in tails:
            await asyncio.to_thread(tail.wait_err, "locked by a writer", seconds * 0.8)
        await each(
            (watching, polling),
            lambda r: r.status(path).state is SourceState.LOCKED,
            "to say LOCKED",
            seconds * 0.8,
        )
        for reader in (watching, polling):
            assert reader.status(path).message == "locked by a writer; retrying"
            assert reader.rows == []
        assert time.monotonic() - locked_at < seconds, "the lock ended before all readers saw it"
        assert all(tail.alive() for tail in tails)
        assert await asyncio.to_thread(said.take, 2, seconds + TIMEOUT) == ["locked", "committed"]
        assert await asyncio.to_thread(locker.wait, TIMEOUT) == 0
        for tail in tails:
            await asyncio.to_thread(tail.take, 1 + rows)
        await each((watching, polling), lambda r: len(r.rows) >= rows, "all rows")
        await each((watching, polling), lambda r: r.status(path).state is SourceState.OK, "OK")
        await nothing_more_arrives(folder, lambda: len(watching.log), lambda: len(polling.log))
        for reader in (watching, polling):
            assert ids(reader.rows) == list(range(11, 11 + rows)), reader.name
            assert [s.state for s in reader.states] == [
                SourceState.OK,
                SourceState.LOCKED,
                SourceState.OK,
            ], reader.name
    ticking.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await ticking
    for tail in tails:
        printed, err = await asyncio.to_thread(tail.finish)
        assert ids(printed) == [10, *range(11, 11 + rows)], tail.name
        assert err == [
            f"velora-tui: {path}: locked: locked by a writer; retrying",
            f"velora-tui: {path}: ok",
        ], tail.name
    # The readers' event loop never froze for the lock's duration (refreshes run in threads,
    # and the poller's cheap check gives up at once instead of waiting out the busy timeout).
    assert max(stalls) < 0.5, f"event loop stalled {max(stalls):.2f} s"


# velora's writer (simulate.Writer: a SQLModel session, add, commit, 5 s busy timeout), each
# commit timed. Timestamps are fixed, so the file it leaves is the same byte for byte whether or
# not anyone was reading. One process writes one run per request read from stdin (importing
# SQLModel costs most of a second: paid once).
TIMED_WRITER = """
import json, sys, time
from datetime import datetime, timedelta
from pathlib import Path
from sqlalchemy.exc import OperationalError
from velora_tui.writer.simulate import RunPlan, Writer, episodes

for request in sys.stdin:
    job = json.loads(request)
    commits, gap = job["commits"], job["gap"]
    writer = Writer(Path(job["db"]))
    plan = RunPlan("NeuroFlow", "CartPole-v1", commits, commits, 500.0, seed=1)
    rows = list(episodes(plan))
    start = datetime(2026, 11, 24, 12, 0, 0)
    exp_id = writer.start(plan, created_at=start)
    latencies, locked, other = [], 0, []
    for index, values in enumerate(rows):
        began = time.perf_counter()
        try:
            writer.add(exp_id, values, at=start + timedelta(milliseconds=index + 1))
        except OperationalError as exc:
            if "locked" in str(exc):
                locked += 1
            else:
                other.append(str(exc))
        latencies.append(time.perf_counter() - began)
        time.sleep(gap)
    writer.engine.dispose()
    print(json.dumps({"latencies": latencies, "locked": locked, "other": other}), flush=True)
"""


class TimedWriter:
    def __init__(self, log: Path) -> None:
        with log.open("wb") as errors:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", TIMED_WRITER],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=errors,
                env=child_env(),
            )
        assert self.proc.stdout is not None
        self.results = Lines(self.proc.stdout)
        self.log = log

    def write(self, db: Path, commits: int, gap: float) -> dict[str, Any]:
        """One run of `commits` commits `gap` seconds apart into `db` (a new file)."""
        assert self.proc.stdin is not None
        request = {"db": str(db), "commits": commits, "gap": gap}
        self.proc.stdin.write((json.dumps(request) + "\n").encode())
        self.proc.stdin.flush()
        if self.proc.poll() is not None:
            pytest.fail(f"writer ended: {self.log.read_text()}")
        done = len(self.results.lines) + 1
        result: dict[str, Any] = json.loads(
            self.results.take(done, TIMEOUT + commits * (gap + 0.05))[-1]
        )
        return result


@contextlib.contextmanager
def timed_writer(base: Path) -> Iterator[TimedWriter]:
    writer = TimedWriter(base / "writer.stderr")
    try:
        yield writer
    finally:
        stop_process(writer.proc)


CONDITIONS = ("alone", "tail -f", "tail -f --poll", "app", "app --poll")


@dataclass(frozen=True, slots=True)
class WriterRun:
    condition: str
    latencies: list[float]
    locked: int
    other_errors: list[str]
    digest: str  # sha256 of the metrics.db the writer left
    files: list[str]  # every name in the folder afterwards
    printed: int | None  # rows tail printed (None: alone)

    @property
    def p50(self) -> float:
        return percentile(self.latencies, 50)

    @property
    def p99(self) -> float:
        return percentile(self.latencies, 99)


def writer_run(
    spawn: Spawn,
    writer: TimedWriter,
    base: Path,
    condition: str,
    commits: int,
    gap: float = 0.002,
) -> WriterRun:
    """The timed writer into a fresh folder below `base`, alone or with a `tail -f` attached.

    With a reader, the folder is checked byte-for-byte unchanged while only the reader runs
    (before the writer starts, and after it ended)."""
    folder = base / f"{condition.replace(' ', '').replace('-', '')}-{time.monotonic_ns()}"
    folder.mkdir(parents=True)
    path = folder / "metrics.db"
    tail = None
    app: tuple[Terminal, threading.Thread] | None = None
    poll = condition.endswith("--poll")
    if condition.startswith("app"):
        app = app_beside(folder, path, poll)
    elif condition != "alone":
        tail = Tail(spawn, [path], poll=poll)
        with assert_unchanged(folder):
            tail.wait_err("not created yet")
            time.sleep(0.3)  # its watcher (or poller) is running
    data = writer.write(path, commits, gap)
    printed = None
    if app is not None:
        terminal, opener = app
        opener.join(TIMEOUT)
        with assert_unchanged(folder):
            time.sleep(SETTLE)
            assert terminal.close() == 0  # SIGTERM: a clean exit
        assert terminal.output.find(b"1 Charts") >= 0, "the experiment was never opened"
    if tail is not None:
        tail.take(commits)
        with assert_unchanged(folder):
            time.sleep(SETTLE)
            rows, err = tail.finish()
        assert ids(rows) == list(range(1, commits + 1))
        # A writer committing every few ms can keep a reader out for its whole busy timeout
        # (SQLite's rollback-journal locking; seen on a disk with slow fsyncs): it may then say
        # "locked" for a moment. Nothing else may appear.
        # And velora creates the file before its tables: a reader that looks in between says so.
        transient = {
            f"velora-tui: {path}: locked: locked by a writer; retrying",
            f"velora-tui: {path}: waiting: file is empty; waiting for training to create"
            " the tables",
            f"velora-tui: {path}: ok",
        }
        assert err[0] == (
            f"velora-tui: {path}: waiting: not created yet; waiting for training to start"
        )
        assert set(err[1:]) <= transient
        assert err[-1] == f"velora-tui: {path}: ok"
        printed = len(rows)
    snapshot = dir_snapshot(folder)
    return WriterRun(
        condition,
        data["latencies"],
        data["locked"],
        data["other"],
        snapshot["metrics.db"][0],
        sorted(k for k in snapshot if k != "."),
        printed,
    )


def app_beside(folder: Path, path: Path, poll: bool) -> tuple[Terminal, threading.Thread]:
    """The app in a terminal (120x40) on `path`, not created yet; it opens the experiment as soon
    as it is listed (its charts: the view that reads the most)."""
    app = Terminal(python_command(path, *(["--poll"] if poll else [])))
    with assert_unchanged(folder):
        assert app.wait_for("Waiting for", 0, TIMEOUT), "the app did not start"
        time.sleep(0.3)  # its watcher (or poller) is running

    def open_when_listed() -> None:
        if app.wait_for("NeuroFlow", 0, TIMEOUT):
            app.key("\r", "1 Charts")

    opener = threading.Thread(target=open_when_listed, daemon=True)
    opener.start()
    return app, opener


def report(runs: Sequence[WriterRun]) -> None:
    for run in runs:
        print(
            f"  {run.condition:<15} p50 {run.p50 * 1e3:6.2f} ms  p99 {run.p99 * 1e3:6.2f} ms"
            f"  max {max(run.latencies) * 1e3:6.2f} ms  locked {run.locked}"
            f"  printed {'-' if run.printed is None else run.printed}"
        )


def check_harmless(runs: Sequence[WriterRun]) -> None:
    """What must hold in every run, whatever the noise: no errors, the same file, no strays."""
    digests = {run.digest for run in runs}
    for run in runs:
        assert run.locked == 0, f"{run.condition}: {run.locked} 'database is locked' errors"
        assert run.other_errors == [], run.other_errors
        assert run.files == ["metrics.db"], f"{run.condition}: stray files {run.files}"
    assert len(digests) == 1, "the file differs when a reader was attached"


@contextlib.contextmanager
def scratch_dir(tmp_path: Path) -> Iterator[Path]:
    """Where latency is measured: tmpfs when there is one. There fsync costs nothing, so what
    a reader adds to a commit (its locks, its CPU) is not lost in the disk's noise (on this
    machine's ext4 the writer's p99 alone swings between 3 and 25 ms from run to run)."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        with tempfile.TemporaryDirectory(prefix="velora-tui-test-", dir=shm) as name:
            yield Path(name)
    else:
        yield tmp_path
