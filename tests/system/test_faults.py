"""Proof under fire: faults while watching, with real processes and real files.

The fault cases run two kinds of reader at once against the same faults: `velora-tui tail -f
--json` as a separate process, and Monitor + ChangeFeed + live_updates in this process (one
watching for file events, one polling). Writers are separate processes: the simulator
(velora's exact writing pattern) or small sqlite3 scripts that do what a real training process
can do to the file (hold an exclusive lock, die mid-transaction). Every wait is bounded.

The longer versions (a 10 s lock, 2,000 episodes/s for 30 s, p99 commit latency within 1.2x)
are in test_soak.py (`make soak`).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import TIMEOUT, Lines
from tests.support.databases import MakeDb, add_episode, execute
from tests.support.faults import (
    CONDITIONS,
    INSERT,
    Reader,
    Seen,
    Tail,
    check_harmless,
    each,
    exclusive_lock,
    ids,
    nothing_more_arrives,
    readers,
    report,
    scratch_dir,
    timed_writer,
    writer_run,
)
from tests.support.folders import assert_unchanged
from tests.support.numbers import percentile
from tests.support.processes import Simulator, Spawn
from tests.support.waiting import until
from velora_tui.data import feed as feed_module
from velora_tui.data.feed import FeedMode
from velora_tui.data.records import SourceState

# A training process killed mid-transaction: rows inserted in a rollback-journal transaction
# that spills to the file (tiny cache), then it waits to be SIGKILLed before COMMIT.
UNCOMMITTED_REWARD = -777.0
CRASHING_WRITER = f"""
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=5)
conn.execute("PRAGMA cache_size = 1")
conn.execute("BEGIN")
for index in range(int(sys.argv[2])):
    conn.execute({INSERT!r}, (5000 + index, {UNCOMMITTED_REWARD!r}))
print("in transaction", flush=True)
time.sleep(60)
"""

# `velora-tui` with file watching made impossible (as when the OS watch limit is reached).
WATCH_LIMIT = "OS file watch limit reached"
NO_WATCHING = f"""
import sys
import watchfiles._rust_notify

def watch_limit_reached(*args, **kwargs):
    raise OSError({WATCH_LIMIT!r})

watchfiles._rust_notify.RustNotify = watch_limit_reached
from velora_tui.cli import entry
sys.argv = ["velora-tui", *sys.argv[1:]]
entry()
"""


# -- readers -----------------------------------------------------------------------------------


def uncommitted(rows: Sequence[Seen | dict[str, Any]]) -> list[Seen | dict[str, Any]]:
    return [
        row
        for row in rows
        if (row.reward if isinstance(row, Seen) else row["reward"]) == UNCOMMITTED_REWARD
    ]


# -- a new database at the same path -----------------------------------------------------------

FIRST, SECOND = 20, 30


@pytest.mark.parametrize("how", ["deleted", "replaced", "directory-remade"])
async def test_new_database_at_the_same_path(
    tmp_path: Path, spawn: Spawn, simulator: Simulator, make_db: MakeDb, how: str
) -> None:
    """A new training run after a cleanup: every row of the new file is delivered exactly once,
    after the reader says it is a new file (reset; tail: one stderr line)."""
    folder = tmp_path / "run"
    path = make_db(folder / "metrics.db", [FIRST])
    tail = Tail(spawn, [path], lines=1, poll=how == "replaced")
    [last] = await asyncio.to_thread(tail.take, 1)  # loaded: following from here
    assert (last["id"], last["episode_num"]) == (FIRST, FIRST)
    async with readers(path) as (watching, polling):
        if how == "deleted":
            path.unlink()
            writer = simulator(path, episodes=SECOND, rate=300)
        elif how == "replaced":
            # Written next to it, then moved over it in one step (os.replace).
            os.replace(make_db(folder / "next.db", [SECOND], seed=7), path)
            writer = None
        else:
            shutil.rmtree(folder)
            await asyncio.to_thread(tail.wait_err, "removed; waiting for a new one")
            await each(
                (watching, polling),
                lambda r: r.status(path).state is SourceState.WAITING,
                "to say the file is gone",
            )
            for reader in (watching, polling):
                assert "removed" in reader.status(path).message
            folder.mkdir()
            writer = simulator(path, episodes=SECOND, rate=300)
        followed = await asyncio.to_thread(tail.take, 1 + SECOND)
        await each((watching, polling), lambda r: len(r.rows) >= SECOND, "all rows")
        if writer is not None:
            assert await asyncio.to_thread(writer.wait, TIMEOUT) == 0
        await nothing_more_arrives(folder, lambda: len(watching.log), lambda: len(polling.log))
        for reader in (watching, polling):
            assert reader.log == ["reset", *(r for r in reader.rows)], reader.name
            assert ids(reader.rows) == list(range(1, SECOND + 1)), reader.name
            assert reader.status(path).state is SourceState.OK
            summary = reader.monitor.summary((path, 1))
            assert summary is not None
            assert summary.episodes == SECOND
    rows, err = await asyncio.to_thread(tail.finish)
    assert ids(followed[1:]) == ids(rows[1:]) == list(range(1, SECOND + 1))
    said = f"velora-tui: {path}: replaced by a new database; following it from its first episode"
    assert [line for line in err if "replaced" in line] == [said]
    # The last word on the file: replaced, or ok if it had said it waits. (A saturated machine
    # may also make the feed switch to polling, said on a line of its own.)
    on_file = [line for line in err if not line.startswith("velora-tui: polling:")]
    assert on_file[-1] in (said, f"velora-tui: {path}: ok")


# -- a writer holding an exclusive lock --------------------------------------------------------


async def test_exclusive_lock_held_by_a_writer(
    tmp_path: Path, spawn: Spawn, make_db: MakeDb
) -> None:
    await exclusive_lock(tmp_path, spawn, make_db, seconds=3.0)


# -- a writer killed mid-transaction -----------------------------------------------------------


async def test_writer_killed_mid_transaction(tmp_path: Path, spawn: Spawn, make_db: MakeDb) -> None:
    """SIGKILL before COMMIT leaves a hot journal: readers say so (LOCKED, hot journal), never
    hand out an uncommitted row, never touch the journal, and recover once the next writer has
    rolled it back."""
    folder = tmp_path / "run"
    path = make_db(folder / "metrics.db", [10])
    journal = path.with_name("metrics.db-journal")
    tail = Tail(spawn, [path], lines=1, poll=True)
    await asyncio.to_thread(tail.take, 1)
    async with readers(path) as (watching, polling):
        size = path.stat().st_size
        crasher = spawn(
            [sys.executable, "-c", CRASHING_WRITER, str(path), "3000"], stdout=subprocess.PIPE
        )
        assert crasher.stdout is not None
        await asyncio.to_thread(Lines(crasher.stdout).take, 1)
        assert path.stat().st_size > size  # the transaction reached the file itself
        crasher.send_signal(signal.SIGKILL)
        assert await asyncio.to_thread(crasher.wait, TIMEOUT) == -signal.SIGKILL
        assert journal.exists()
        assert journal.stat().st_size > 0
        hot = "a writer stopped mid-transaction (hot journal)"
        await asyncio.to_thread(tail.wait_err, hot)
        await each((watching, polling), lambda r: hot in r.status(path).message, "hot journal")
        for reader in (watching, polling):
            assert reader.status(path).state is SourceState.LOCKED
        # Several heartbeats and polls with only readers: nothing rolled back, nothing shown.
        with assert_unchanged(folder):
            await asyncio.sleep(1.2)
            assert tail.alive()
        assert watching.rows == polling.rows == []
        # The next writer (a normal read-write connection) rolls the journal back...
        execute(path, "SELECT count(*) FROM episode")
        assert not journal.exists()
        # ... and writes again: exactly those rows arrive.
        new = [add_episode(path, 1, episode_num=11 + n, reward=float(n)) for n in range(3)]
        assert new == [11, 12, 13]
        await asyncio.to_thread(tail.take, 1 + len(new))
        await each((watching, polling), lambda r: len(r.rows) >= len(new), "new rows")
        await nothing_more_arrives(folder, lambda: len(watching.log), lambda: len(polling.log))
        for reader in (watching, polling):
            assert ids(reader.rows) == new, reader.name
            assert uncommitted(reader.rows) == []
            assert reader.status(path).state is SourceState.OK
            summary = reader.monitor.summary((path, 1))
            assert summary is not None
            assert summary.episodes == 13
            assert summary.best_reward != UNCOMMITTED_REWARD
    rows, err = await asyncio.to_thread(tail.finish)
    assert ids(rows) == [10, *new]
    assert uncommitted(rows) == []
    assert f"velora-tui: {path}: locked: {hot}; waiting for the next writer to recover it" in err
    assert err[-1] == f"velora-tui: {path}: ok"


# -- two training processes writing one file ---------------------------------------------------


async def test_two_writers_at_once(tmp_path: Path, spawn: Spawn, simulator: Simulator) -> None:
    """Two training runs started together on one metrics.db: every episode of both, once."""
    folder = tmp_path / "run"
    folder.mkdir()
    path = folder / "metrics.db"
    tail = Tail(spawn, [path])
    await asyncio.to_thread(tail.wait_err, "not created yet")
    episodes = 150  # 1 s each: far longer than the two processes' start-up skew
    async with readers(path) as (watching, polling):
        writers = [
            simulator(path, episodes=episodes, rate=150, extra=["--seed", str(seed)])
            for seed in (1, 2)
        ]
        printed = await asyncio.to_thread(tail.take, 2 * episodes)
        await each((watching, polling), lambda r: len(r.rows) >= 2 * episodes, "all rows")
        for writer in writers:
            assert await asyncio.to_thread(writer.wait, TIMEOUT) == 0
        await nothing_more_arrives(folder, lambda: len(watching.log), lambda: len(polling.log))
        expected = sorted((exp, num) for exp in (1, 2) for num in range(1, episodes + 1))
        for reader in (watching, polling):
            rows = reader.rows
            assert ids(rows) == list(range(1, 2 * episodes + 1)), reader.name
            assert sorted((r.experiment_id, r.episode_num) for r in rows) == expected
            summaries = {s.id: s.episodes for s in reader.monitor.summaries()}
            assert summaries == {1: episodes, 2: episodes}
    tailed, _err = await asyncio.to_thread(tail.finish)
    assert ids(tailed) == ids(printed) == list(range(1, 2 * episodes + 1))
    assert sorted((r["experiment_id"], r["episode_num"]) for r in tailed) == expected
    # Interleaved, really at once (not one after the other).
    first_of_two = next(i for i, r in enumerate(tailed) if r["experiment_id"] == 2)
    last_of_one = max(i for i, r in enumerate(tailed) if r["experiment_id"] == 1)
    assert first_of_two < last_of_one


# -- watching impossible -----------------------------------------------------------------------


async def test_watching_impossible_falls_back_to_polling(
    tmp_path: Path, spawn: Spawn, simulator: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The OS refuses a file watch: the feed polls by itself, says why, and misses nothing;
    `tail -f` says so on stderr. (`tail -f --poll`, polling from the start, is one of the
    readers of the lock and crash cases above.)"""

    def watch_limit_reached(*args: Any, **kwargs: Any) -> None:
        raise OSError(WATCH_LIMIT)

    monkeypatch.setattr(feed_module, "RustNotify", watch_limit_reached)
    folder = tmp_path / "run"
    folder.mkdir()
    path = folder / "metrics.db"
    tail = Tail(spawn, [path], command=[sys.executable, "-c", NO_WATCHING])
    await asyncio.to_thread(tail.wait_err, "not created yet")
    episodes = 120
    reader = Reader.start([path], poll=False)
    try:
        writer = simulator(path, episodes=episodes, rate=200)
        await asyncio.to_thread(tail.take, episodes)
        await until(lambda: len(reader.rows) >= episodes, "in-process rows")
        assert await asyncio.to_thread(writer.wait, TIMEOUT) == 0
        await nothing_more_arrives(folder, lambda: len(reader.log))
        assert ids(reader.rows) == list(range(1, episodes + 1))
        assert reader.feed.mode is FeedMode.POLLING
        assert reader.feed.describe() == f"polling: file watching failed ({WATCH_LIMIT})"
    finally:
        await reader.stop()
    rows, err = await asyncio.to_thread(tail.finish)
    assert ids(rows) == list(range(1, episodes + 1))
    assert [line for line in err if "polling" in line] == [
        f"velora-tui: polling: file watching failed ({WATCH_LIMIT})"
    ]


# -- never harm training -----------------------------------------------------------------------


def test_never_harm_training(tmp_path: Path, spawn: Spawn) -> None:
    """Short version (the soak one asks for p99 within 1.2x): velora's writer alone, with
    `tail -f`, with `tail -f --poll`: no errors, the same bytes, latency in the same range."""
    commits = 200
    with scratch_dir(tmp_path) as base, timed_writer(base) as writer:
        runs = [writer_run(spawn, writer, base, condition, commits) for condition in CONDITIONS]
    report(runs)
    check_harmless(runs)
    alone = runs[0]
    for run in runs[1:]:
        # 2 shared cores, beside the other tests: only a gross slowdown is a finding here, in
        # the middle of the runs (of 200 commits, p99 is the second worst: one descheduled
        # commit of the writer's own, 12.6 ms against 1.1 ms, failed a CI run). The tail is
        # bench/writer_impact.py's and test_soak's (p99 within 1.2x over 1,000s of commits).
        assert run.p50 <= 3 * alone.p50 + 0.002, run.condition
        assert percentile(run.latencies, 90) <= 4 * percentile(alone.latencies, 90) + 0.005, (
            run.condition
        )
