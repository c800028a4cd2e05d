"""The running app: commit-to-screen latency, idle CPU, time to first full screen, memory.

Runs the real app headless in this process (Textual's test driver renders every frame, as a
terminal would). Prints numbers; `main()` returns them for bench/run_all.py.
"""

from __future__ import annotations

import asyncio
import resource
import shutil
import time
from pathlib import Path

from bench.common import (
    Metric,
    big_database,
    median,
    print_header,
    scratch_dir,
    simulator,
)
from tests.support.numbers import percentile, read_commit_log
from velora_tui.data.monitor import Monitor
from velora_tui.data.records import Update
from velora_tui.tui.app import Settings, VeloraApp
from velora_tui.tui.widgets.experiment_table import ExperimentTable

SAMPLE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "sample-0.2.0.db"


class MissedEpisodes(RuntimeError):
    """Committed episodes that never reached the screen: a bug, never a number to print."""


class TimedApp(VeloraApp):
    """Stamps every episode id when the screen showing it has been painted.

    An episode reaches the screen in one of two ways: as a new row, or counted in a first
    load's summary (the file appeared, or was replaced, after it was committed: its rows are
    summarised, not handed out one by one). `summarised` keeps, for each first load, the paint
    time and the highest id it counted.
    """

    def __init__(self, monitor: Monitor, settings: Settings | None = None) -> None:
        super().__init__(monitor, settings)
        self.shown: dict[int, float] = {}
        self.summarised: list[tuple[float, int]] = []

    def publish(self, updates: list[Update], heartbeat: bool = False) -> None:
        super().publish(updates, heartbeat)
        ids = [row.id for update in updates for row in update.episodes]
        counted = [
            summary.last_id
            for update in updates
            if update.first_load
            for summary in (self.monitor.summary((update.db, exp)) for exp in update.experiments)
            if summary is not None and summary.last_id is not None
        ]
        if ids or counted:
            self.call_after_refresh(self._stamp, ids, max(counted, default=0))

    def _stamp(self, ids: list[int], counted: int) -> None:
        self.call_after_refresh(self._painted, ids, counted)

    def _painted(self, ids: list[int], counted: int) -> None:
        now = time.time()
        for episode_id in ids:
            self.shown.setdefault(episode_id, now)
        if counted:
            self.summarised.append((now, counted))

    def summarised_at(self, episode_id: int) -> float | None:
        """When a first load's summary that counts this episode was painted, if one did."""
        return min((stamp for stamp, upto in self.summarised if episode_id <= upto), default=None)

    def reached(self, episode_id: int) -> bool:
        return episode_id in self.shown or self.summarised_at(episode_id) is not None


async def commit_to_screen(poll: bool, episodes: int = 300, rate: float = 30.0) -> list[float]:
    """Seconds from each episode's commit to the paint that shows it as a new row. Raises
    MissedEpisodes, naming them, if any committed episode never reached the screen."""
    with scratch_dir("app-latency") as folder:
        db = folder / "metrics.db"
        log = folder / "commits.log"
        app = TimedApp(Monitor([db]), Settings(poll=poll))
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause(0.5)
            with simulator(db, rate=rate, episodes=episodes, commit_log=log) as writer:
                deadline = time.monotonic() + episodes / rate + 15
                while writer.poll() is None and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
                finished = writer.poll() is not None
            # The writer has ended (or was stopped at the deadline): every commit is in the log.
            # Its last ones get the time any commit gets to reach the screen, and more.
            commits = read_commit_log(log)
            grace = time.monotonic() + 5.0
            while not all(map(app.reached, commits)) and time.monotonic() < grace:
                await asyncio.sleep(0.05)
            await pilot.press("enter", "2")  # the episode tail keeps up too
            await pilot.pause(0.3)
        missing = sorted(i for i in commits if not app.reached(i))
        if missing:
            raise MissedEpisodes(
                f"{len(missing)} of {len(commits)} committed episodes never reached the screen"
                f" ({'polling' if poll else 'watching'}, {rate:g}/s): ids {missing[:20]}"
                + (" ..." if len(missing) > 20 else "")
            )
        in_summary = len(commits) - sum(i in app.shown for i in commits)
        note = "" if finished else "; the writer was stopped at the deadline"
        print(
            f"  {len(commits)} commits, every one on the screen: {len(commits) - in_summary} as"
            f" new rows, {in_summary} counted by the first load{note}"
        )
        return [app.shown[i] - t for i, t in commits.items() if i in app.shown]


async def idle_cpu(seconds: float = 10.0) -> float:
    with scratch_dir("app-idle") as folder:
        db = folder / "metrics.db"
        shutil.copyfile(SAMPLE, db)
        app = VeloraApp(Monitor([db]), Settings())
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause(2.0)
            start_cpu, start = time.process_time(), time.perf_counter()
            await asyncio.sleep(seconds)
            used = time.process_time() - start_cpu
            return 100.0 * used / (time.perf_counter() - start)


class FirstPaint(VeloraApp):
    """Stamps the first paint after the first read was published."""

    painted: float = 0.0

    def publish(self, updates: list[Update], heartbeat: bool = False) -> None:
        super().publish(updates, heartbeat)
        if not self.painted:
            self.call_after_refresh(lambda: self.call_after_refresh(self._paint))

    def _paint(self) -> None:
        self.painted = self.painted or time.perf_counter()


async def first_screen(db: Path) -> tuple[float, float]:
    """From creating the app (imports done) to the list of all experiments on the screen."""
    started = time.perf_counter()
    app = FirstPaint(Monitor([db]), Settings(live=False))
    async with app.run_test(size=(120, 40)):
        table = app.screen.query_one(ExperimentTable)
        while not app.painted or table.row_count < 100:
            await asyncio.sleep(0.005)
        elapsed = app.painted - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return elapsed, peak_mb


def main() -> list[Metric]:
    print_header("app: commit to screen (120x40)")
    metrics = []
    # A busy writer, then a slow one whose every episode comes after a quiet spell, when the
    # watcher looks less often (data/feed.py: IDLE_STEP_MS).
    for poll, episodes, rate in ((False, 300, 30.0), (True, 300, 30.0), (False, 12, 0.4)):
        lat = asyncio.run(commit_to_screen(poll, episodes, rate))
        p50, p95 = percentile(lat, 50) * 1000, percentile(lat, 95) * 1000
        mode = f"{'polling' if poll else 'watching'}, {rate:g} episodes/s"
        print(
            f"  {mode}: n={len(lat)} p50 {p50:.1f} ms  p95 {p95:.1f} ms"
            f"  max {max(lat) * 1000:.1f} ms"
        )
        metrics.append(
            Metric(
                f"app commit-to-screen p50/p95 ({mode})",
                "p95 <= 100 ms",
                f"{p50:.0f} / {p95:.0f} ms",
                p95 <= 100,
            )
        )
    print_header("app: idle CPU over 10 s (sample database, watching)")
    cpu = asyncio.run(idle_cpu())
    print(f"  {cpu:.2f}% of one core")
    metrics.append(Metric("app idle CPU (10 s)", "< 1% of a core", f"{cpu:.2f}%", cpu < 1.0))
    print_header("app: first full screen on 100 experiments x 10,000 episodes")
    db = big_database()
    # One sample swung by 0.3 s from run to run (the first read races Textual's start-up for
    # the GIL): the median of three.
    runs = [asyncio.run(first_screen(db)) for _ in range(3)]
    elapsed = median([t for t, _ in runs])
    peak = runs[0][1]  # the process's peak after the first: later runs add their garbage
    print(
        f"  first full screen {elapsed:.2f} s (median of 3; "
        f"{min(t for t, _ in runs):.2f}-{max(t for t, _ in runs):.2f} s), peak RSS {peak:.0f} MB"
    )
    metrics.append(
        Metric("app first full screen, 1M episodes", "<= 1 s", f"{elapsed:.2f} s", elapsed <= 1.0)
    )
    metrics.append(
        Metric("app peak memory, 1M episodes", "<= 200 MB", f"{peak:.0f} MB", peak <= 200)
    )
    return metrics


if __name__ == "__main__":
    main()
