"""A source whose file system stops answering (a dead NFS or Lustre server, a hung ssh mount):
it is shown as "not responding" and every other source goes on; when it answers again it is
read as usual, nothing lost; nothing waits for it, neither the app's keys nor its exit.

The dead server is tests.support.hanging_fs: the data layer's calls on the stuck source block in
the kernel (on a FIFO's open) until the test releases them. The deadline is cut to DEADLINE
seconds so that the tests run fast (2 s, not less: a healthy source's read on a machine as busy
as a parallel test run must stay within it); the bounds they check are multiples of it.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support.cli import Lines, Result, check_output, strict_json
from tests.support.databases import SAMPLE_EPISODES, MakeDb, add_episode
from tests.support.hanging_fs import HUNG_CLI, Gate, HangingFiles, pass_gate
from tests.support.processes import Spawn, Terminal, child_env
from tests.support.reading import copy_sample
from tests.support.waiting import wait_for
from velora_tui.data.database import ReadFailed
from velora_tui.data.deadline_lanes import Lane, NotResponding, Pool, answer
from velora_tui.data.feed import ChangeFeed, live_updates
from velora_tui.data.monitor import Monitor
from velora_tui.data.records import SourceState, SourceStatus, Update

DEADLINE = 2.0
# Far more than anything here should take (each is a few deadlines at most).
BOUND = 15.0
TIMEOUT = 30.0


@pytest.fixture
def gate(tmp_path: Path) -> Iterator[Gate]:
    """Hung until the test releases it; released at the end, so that no thread stays blocked."""
    gate = Gate(tmp_path / "gate")
    try:
        yield gate
    finally:
        gate.close()


def states(monitor: Monitor) -> dict[Path, SourceStatus]:
    return {status.path: status for status in monitor.statuses()}


def timed(call: Callable[[], object]) -> float:
    started = time.monotonic()
    call()
    return time.monotonic() - started


# -- a lane --------------------------------------------------------------------------------------


def test_a_lane_gives_up_after_its_deadline_and_fails_fast_while_stuck(gate: Gate) -> None:
    lane = Lane("test", deadline=DEADLINE)
    assert lane.run(lambda: 1) == 1
    started = time.monotonic()
    with pytest.raises(NotResponding):
        lane.run(lambda: pass_gate(gate.path))
    assert DEADLINE <= time.monotonic() - started < BOUND
    assert lane.stuck
    started = time.monotonic()
    with pytest.raises(NotResponding):
        lane.run(lambda: 2)  # not queued behind the stuck call
    assert time.monotonic() - started < DEADLINE
    gate.release()
    wait_for(lambda: not lane.stuck, BOUND, what="the call to come back")
    assert lane.run(lambda: 3) == 3


def test_calls_given_up_on_answer_the_fallback_and_never_raise(gate: Gate) -> None:
    """A closing monitor abandons its lanes: the call under way ends as NotResponding, a queued
    one cancelled. Whoever looks at their answers afterwards (the feed's last heartbeat did, and
    `tail -f` ended on SIGTERM with "internal error: NotResponding") gets the fallback."""
    lane = Lane("test", deadline=DEADLINE)

    def stat_at_the_gate() -> int:
        pass_gate(gate.path)
        return 1

    running = lane.submit(stat_at_the_gate)
    wait_for(running.running, BOUND, what="the call to start")
    queued = lane.submit(lambda: 1)
    lane.abandon()
    assert isinstance(running.exception(timeout=BOUND), NotResponding)
    assert queued.cancelled()
    assert answer(running, -2) == answer(queued, -2) == -2
    assert answer(None, -2) == -2
    done = Lane("other", deadline=DEADLINE).submit(lambda: 5)
    assert done.result(timeout=BOUND) == 5
    assert answer(done, -2) == 5
    gate.release()


def test_more_stuck_sources_than_workers_never_stop_the_others(gate: Gate) -> None:
    """Each worker stuck in a call is replaced: a good lane still runs, and once the stuck
    calls come back the pool is back to its size."""
    pool = Pool(size=2)
    stuck = [Lane(f"stuck {n}", DEADLINE, pool) for n in range(3)]
    for lane in stuck:
        lane.submit(lambda: pass_gate(gate.path))
    good = Lane("good", DEADLINE, pool)
    started = time.monotonic()
    assert good.run(lambda: 7, wait=BOUND) == 7
    assert time.monotonic() - started < BOUND
    wait_for(lambda: all(lane.stuck for lane in stuck), BOUND, what="every stuck lane stuck")
    started = time.monotonic()
    assert good.run(lambda: 8) == 8
    assert time.monotonic() - started < DEADLINE
    gate.release()
    wait_for(lambda: not any(lane.stuck for lane in stuck), BOUND)
    wait_for(lambda: pool.workers == 2, BOUND, what="the extra workers gone")
    assert [lane.run(lambda: 9) for lane in stuck] == [9, 9, 9]


# -- the data layer ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["file", "directory"])
def test_a_source_that_does_not_answer_from_the_start(
    tmp_path: Path, gate: Gate, make_db: MakeDb, kind: str
) -> None:
    """Named on a dead mount: the monitor starts within about a deadline, with the source
    "not responding" and the other listed; once it answers it is read (a directory as a
    directory, its databases found), with the rows written meanwhile."""
    good = copy_sample(tmp_path / "good")
    dead = tmp_path / "dead"
    stuck = make_db(
        dead / "run" / "metrics.db" if kind == "directory" else dead / "metrics.db", [3]
    )
    files = HangingFiles(gate.path, dead)
    source = stuck if kind == "file" else dead
    started = time.monotonic()
    monitor = Monitor([good, source], files=files, deadline=DEADLINE)
    try:
        assert time.monotonic() - started < BOUND
        updates = monitor.refresh()
        assert [u.db for u in updates if u.experiments] == [good]
        assert len(monitor.summaries()) == 3
        wait_for(
            lambda: states(monitor)[source].state is SourceState.NOT_RESPONDING,
            BOUND,
            what="not responding",
        )
        assert "has not answered" in states(monitor)[source].message
        # Skipped while it does not answer: no wait for it.
        assert timed(monitor.refresh) < DEADLINE
        add_episode(good, 3, episode_num=61)
        add_episode(stuck, 1, episode_num=4)
        [update] = monitor.refresh()
        assert update.db == good
        assert [row.episode_num for row in update.episodes] == [61]
        gate.release()

        def known() -> bool:
            monitor.discover()  # as the heartbeat does
            return stuck in monitor.databases

        wait_for(known, BOUND, what="the stuck source known")
        wait_for(
            lambda: any(u.db == stuck and u.experiments for u in monitor.refresh()),
            BOUND,
            what="it reads again",
        )
        assert monitor.databases[stuck].status.state is SourceState.OK
        assert monitor.summary((stuck, 1)).episodes == 4  # type: ignore[union-attr]
        assert (dead in monitor.directories) == (kind == "directory")
        assert all(s.state is SourceState.OK for s in monitor.statuses())
    finally:
        monitor.close()


def test_a_read_that_hangs_midway_loses_nothing(
    tmp_path: Path, gate: Gate, make_db: MakeDb
) -> None:
    """SQLite's own reads stop mid-statement (the read lock held, as on a dead server): the
    other source is read on; on-demand reads of the stuck one give up at once with its state;
    when it answers, the rows its refresh read come with the next refresh, each once."""
    good = copy_sample(tmp_path / "good")
    stuck = make_db(tmp_path / "dead" / "metrics.db", [3])
    files = HangingFiles(gate.path, stuck.parent, calls={"query"})
    with gate.open_for():
        monitor = Monitor([good, stuck], files=files, deadline=DEADLINE)
        assert len(monitor.refresh()) == 2
    try:
        written = [add_episode(stuck, 1, episode_num=n) for n in range(4, 9)]
        # Hung: the stuck source's refresh stops in its read of the new rows.
        took = time.monotonic()
        updates = monitor.refresh()
        assert time.monotonic() - took < BOUND
        database = monitor.databases[stuck]
        wait_for(lambda: database.status.state is SourceState.NOT_RESPONDING, BOUND)
        news = [add_episode(good, 3, episode_num=61), add_episode(good, 3, episode_num=62)]
        took = time.monotonic()
        more = monitor.refresh()
        assert time.monotonic() - took < DEADLINE  # the stuck one is not waited for
        assert [(u.db, [r.id for r in u.episodes]) for u in more if u.episodes] == [(good, news)]
        # Its new state is announced once (by whichever refresh saw it first).
        assert [u.status_changed for u in updates + more if u.db == stuck] == [True]
        # What the app and the command line ask of it gives up at once, saying why.
        took = time.monotonic()
        assert database.latest_episodes(1, 10) == []
        assert "not responding" in (database.config(1).error or "")
        with pytest.raises(ReadFailed) as failed:
            next(database.iter_episodes(1))
        assert failed.value.status.state is SourceState.NOT_RESPONDING
        assert time.monotonic() - took < DEADLINE
        gate.release()
        delivered: list[int] = []
        changed: list[Update] = []

        def read_on() -> bool:
            for update in monitor.refresh():
                if update.db == stuck:
                    delivered.extend(row.id for row in update.episodes)
                    changed.append(update)
            return delivered == written

        wait_for(read_on, BOUND, what="the late rows")
        assert any(update.status_changed for update in changed)
        assert database.status.state is SourceState.OK
        again = add_episode(stuck, 1, episode_num=9)
        [update] = monitor.refresh()
        assert [row.id for row in update.episodes] == [again]  # nothing twice
        assert monitor.summary((stuck, 1)).episodes == 9  # type: ignore[union-attr]
    finally:
        monitor.close()


def test_a_directory_that_does_not_answer_inside_a_tree(tmp_path: Path, gate: Gate) -> None:
    """A dead mount inside a directory source: the databases before and after it in the walk
    are found and read, the dead directory is named; once it answers, its database is found."""
    root = tmp_path / "runs"
    first, last = copy_sample(root / "a"), copy_sample(root / "z")
    hidden = copy_sample(root / "m" / "run")
    files = HangingFiles(gate.path, root / "m")
    started = time.monotonic()
    monitor = Monitor([root], files=files, deadline=DEADLINE)
    try:
        assert time.monotonic() - started < BOUND
        assert sorted(monitor.databases) == [first, last]
        assert {u.db for u in monitor.refresh()} == {first, last}
        dead = states(monitor)[root / "m"]
        assert dead.state is SourceState.NOT_RESPONDING
        assert "listing this directory" in dead.message
        assert timed(monitor.discover) < DEADLINE  # the walk goes around it now
        gate.release()
        wait_for(lambda: hidden in monitor.discover() or hidden in monitor.databases, BOUND)
        assert {u.db for u in monitor.refresh()} == {hidden}
        assert root / "m" not in states(monitor)
        assert len(monitor.summaries()) == 9
    finally:
        monitor.close()


@pytest.mark.parametrize("poll", [False, True], ids=["watching", "polling"])
async def test_the_live_feed_goes_on_while_one_source_hangs(
    tmp_path: Path, gate: Gate, make_db: MakeDb, poll: bool
) -> None:
    """Watched or polled: the good source's new rows keep arriving while the other does not
    answer; its state changes are announced both ways; its rows then arrive, each once."""
    good = copy_sample(tmp_path / "good")
    stuck = make_db(tmp_path / "dead" / "metrics.db", [3])
    files = HangingFiles(gate.path, stuck.parent, calls={"query", "stat"})
    gate.release()
    monitor = Monitor([good, stuck], files=files, deadline=DEADLINE)
    monitor.refresh()
    feed = ChangeFeed(monitor, poll=poll, heartbeat=0.2)
    rows: dict[Path, list[int]] = {good: [], stuck: []}
    seen: list[SourceState] = []

    async def consume() -> None:
        async for updates in live_updates(monitor, feed):
            for update in updates:
                rows[update.db].extend(row.id for row in update.episodes)
                if update.db == stuck and update.status_changed:
                    seen.append(monitor.databases[stuck].status.state)

    async def until(condition: Callable[[], bool], what: str) -> None:
        limit = time.monotonic() + BOUND
        while not condition():
            assert time.monotonic() < limit, f"timed out waiting for {what}"
            await asyncio.sleep(0.02)

    task = asyncio.create_task(consume())
    try:
        gate.hang()
        await until(lambda: seen[-1:] == [SourceState.NOT_RESPONDING], "not responding")
        news = []
        for n in range(61, 64):
            news.append(await asyncio.to_thread(add_episode, good, 3, episode_num=n))
            await until(lambda: rows[good] == news, "the good source's rows")
        gate.release()
        await until(lambda: seen[-1:] == [SourceState.OK], "ok again")
        late = [await asyncio.to_thread(add_episode, stuck, 1, episode_num=n) for n in (4, 5)]
        await until(lambda: rows[stuck] == late, "the stuck source's rows")
        await asyncio.sleep(0.5)  # anything delivered twice would show now
        assert rows == {good: news, stuck: late}
    finally:
        feed.stop()
        monitor.close(0)
        await asyncio.wait_for(task, BOUND)


# -- the command line ----------------------------------------------------------------------------


def hung_command(
    gate: Gate, below: Path, *args: str | Path, deadline: float = DEADLINE
) -> list[str]:
    """`velora-tui ARGS` whose sources below `below` wait at the gate."""
    settings = [str(gate.path), str(below), str(deadline)]
    return [sys.executable, "-c", HUNG_CLI, *settings, *map(str, args)]


def run_hung(gate: Gate, below: Path, *args: str | Path) -> tuple[Result, float]:
    started = time.monotonic()
    proc = subprocess.run(
        hung_command(gate, below, *args),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=TIMEOUT,
        env=child_env(),
    )
    took = time.monotonic() - started
    result = Result(proc.returncode, proc.stdout.decode(), proc.stderr.decode())
    check_output(result.out, result.err)
    return result, took


def test_headless_commands_name_the_stuck_source_and_end(
    tmp_path: Path, gate: Gate, make_db: MakeDb
) -> None:
    """Several sources: what the others hold, the stuck one named on stderr (exit 0); the stuck
    one alone: a clear message and exit 1, after a bounded time, never a hang (the process
    ends with a thread still blocked in the kernel)."""
    good = copy_sample(tmp_path / "good")
    stuck = make_db(tmp_path / "dead" / "metrics.db", [3])
    below = stuck.parent
    said = f"velora-tui: {stuck}: not responding: its file system has not answered"
    commands: dict[str, list[str | Path]] = {
        "ls-json": ["ls", good, stuck, "--json"],
        "ls-alone": ["ls", stuck],
        "tail": ["tail", "-n", "2", good, stuck],
        "show-alone": ["show", "1", stuck],
        "show-elsewhere": ["show", "9", good, stuck],
        "export-alone": ["export", "1", stuck],
    }
    with ThreadPoolExecutor(len(commands)) as pool:
        ran = pool.map(lambda args: run_hung(gate, below, *args), commands.values())
        results = dict(zip(commands, ran, strict=True))
    for name, (result, took) in results.items():
        assert took < BOUND, name
        assert said in result.err, name
    listed = results["ls-json"][0]
    assert listed.code == 0
    assert len(strict_json(listed.out)) == len(SAMPLE_EPISODES)
    assert results["tail"][0].code == 0
    assert len(results["tail"][0].lines) == 3  # a header and two episodes of the good one
    for name in ("ls-alone", "show-alone", "export-alone", "show-elsewhere"):
        assert results[name][0].code == 1, name
        assert results[name][0].out == ""
    elsewhere = results["show-elsewhere"][0].err
    assert (
        f"no experiment with id 9 in the sources that answered (not responding: {stuck})"
        in elsewhere
    )


def test_tail_follow_reads_on_and_picks_the_stuck_source_up(
    tmp_path: Path, gate: Gate, make_db: MakeDb, spawn: Spawn
) -> None:
    good = copy_sample(tmp_path / "good")
    stuck = make_db(tmp_path / "dead" / "metrics.db", [3])
    tail = spawn(
        hung_command(gate, stuck.parent, "tail", "-f", "-n", "0", "--json", good, stuck),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert tail.stdout is not None
    assert tail.stderr is not None
    out, err = Lines(tail.stdout), Lines(tail.stderr)
    [said] = err.take(1)
    assert said.startswith(f"velora-tui: {stuck}: not responding")
    new = add_episode(good, 3, episode_num=61)
    assert [strict_json(line)["id"] for line in out.take(1)] == [new]
    gate.release()
    # (On a starved machine the good source may be slow for a moment too, and the feed may
    # switch to polling: lines that say so may come first.)
    before = err.until(f"velora-tui: {stuck}: ok")
    assert not any(str(stuck) in line for line in before[:-1]), before
    # Unread when `tail -f` started, it counts as a file that appeared: every row is printed.
    lines = out.take(4)
    assert [(strict_json(line)["db"], strict_json(line)["id"]) for line in lines[1:]] == [
        (str(stuck), n) for n in (1, 2, 3)
    ]
    gate.hang()  # it stops answering again: SIGTERM still ends it at once
    time.sleep(2 * DEADLINE)
    started = time.monotonic()
    tail.send_signal(signal.SIGTERM)
    code = tail.wait(TIMEOUT)
    errors = err.rest()
    assert code == 0, "\n".join(errors)
    assert time.monotonic() - started < BOUND
    check_output("\n".join(out.rest()), "\n".join(errors))


# -- the app -------------------------------------------------------------------------------------


@pytest.mark.ui
async def test_the_app_answers_keys_while_a_source_hangs_and_quits(
    tmp_path: Path, gate: Gate, make_db: MakeDb
) -> None:
    from tests.support.app import SIZE, settle, table
    from tests.support.waiting import until
    from velora_tui.tui.app import Settings, VeloraApp
    from velora_tui.tui.screens.help import HelpScreen

    good = copy_sample(tmp_path / "good")
    stuck = make_db(tmp_path / "dead" / "metrics.db", [3])
    monitor = Monitor([good, stuck], files=HangingFiles(gate.path, stuck.parent), deadline=DEADLINE)
    app = VeloraApp(monitor, Settings())
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        assert table(app).row_count == 3
        await until(lambda: "not responding" in str(app.screen.query_one("#status").render()))
        for _ in range(3):  # keys are answered at once, whatever the stuck source does
            took = time.monotonic()
            await pilot.press("question_mark")
            await until(lambda: isinstance(app.screen, HelpScreen), timeout=DEADLINE)
            await pilot.press("escape")
            await until(lambda: not isinstance(app.screen, HelpScreen), timeout=DEADLINE)
            assert time.monotonic() - took < DEADLINE
        await pilot.press("r")  # re-read everything: the stuck one is skipped
        await pilot.resize_terminal(100, 30)
        add_episode(good, 3, episode_num=61)
        await until(lambda: getattr(monitor.summary((good, 3)), "episodes", 0) == 61)
        gate.release()
        await until(lambda: table(app).row_count == 4, timeout=BOUND)
        assert "not responding" not in str(app.screen.query_one("#status").render())
        gate.hang()
        await until(lambda: monitor.databases[stuck].lane.stuck, timeout=BOUND)
        took = time.monotonic()
        await pilot.press("q")
    assert time.monotonic() - took < DEADLINE  # quitting waits for no read
    assert not app.is_running


@pytest.mark.ui
def test_the_app_process_ends_on_q_with_a_thread_blocked_in_the_kernel(
    tmp_path: Path, gate: Gate, make_db: MakeDb
) -> None:
    """The real app on a terminal, one source hung for good: the other is shown, keys are
    answered, `q` ends the process (Textual's exit waits for its workers; the blocked lane's
    thread is a daemon)."""
    good = copy_sample(tmp_path / "good")
    stuck = make_db(tmp_path / "dead" / "metrics.db", [3])
    terminal = Terminal(hung_command(gate, stuck.parent, good, stuck), size=(250, 40))
    try:
        assert terminal.wait_for("InvertedPendulum", 0, TIMEOUT)
        assert terminal.wait_for("not responding", 0, TIMEOUT)
        assert terminal.key("?", "command palette", timeout=BOUND) < BOUND
        assert terminal.key("\x1b", "InvertedPendulum", timeout=BOUND) < BOUND
        started = time.monotonic()
        terminal.key("q", "\x1b[?1049l", timeout=BOUND)  # the alternate screen left
        assert terminal.proc.wait(BOUND) == 0
        assert time.monotonic() - started < BOUND
    finally:
        terminal.close()


@pytest.mark.ui
def test_the_app_ends_cleanly_on_sigterm_while_its_first_read_waits(
    tmp_path: Path, gate: Gate, make_db: MakeDb
) -> None:
    """SIGTERM while the first read waits for a source that does not answer (a long deadline
    here): a clean exit, not death by the signal in a thread that was not set up for it."""
    good = copy_sample(tmp_path / "good")
    stuck = make_db(tmp_path / "dead" / "metrics.db", [3])
    command = hung_command(gate, stuck.parent, good, stuck, deadline=BOUND)
    terminal = Terminal(command, size=(250, 40))
    try:
        assert terminal.wait_for("Reading", 0, TIMEOUT)
        terminal.proc.send_signal(signal.SIGTERM)
        assert terminal.proc.wait(BOUND) == 0
    finally:
        terminal.close()
