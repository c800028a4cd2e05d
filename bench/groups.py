"""Groups: a group chart of 20 runs x 100,000 episodes redrawn while the runs write, and
grouping 10,000 experiments.

1. Redraw: a copy of a 20 x 100,000-episode file (the 20 runs written at the same time, their
   rows interleaved), and a writer process adding 40 episodes a second over the 20 runs (2
   each, in turn), one commit each, as velora does; a redraw every second, as the chart does.
   (At 200 a second, this 243 MB file's commits kept its lock so long on the 2-core machine's
   disk that reads met `database is locked` after their 1 s busy timeout: the writer's disk,
   not the chart, set the time.)
   A redraw is what the group chart does on new rows: the monitor reads the new rows, each
   run's series reader reads its new rows (downsampled in SQL to 600 buckets a run), the runs
   are smoothed and aggregated (mean, std, min, max over the runs at each of 240 points), and
   the chart's picture is built (plotext, 120x30). Goal: <= 200 ms. Baseline, in the same
   run: the same redraw of one run's reward chart (one reader, thinned, drawn). The first read
   of the 2M rows (once, when the chart opens; the chart grows while it runs) is printed too.
2. Grouping: 10,000 experiments (velora-shaped configs) grouped by seeds: the configs read
   (by id ranges) and parsed, then grouped, named and sorted. Goal: grouping <= 1 s; reading
   the configs is printed apart (it is done once: a config never changes). Then the same with
   each group's figures of `ls --group` (IQM and 95% bootstrap interval of the final and best
   rewards and the episodes to the target; the remembered ones forgotten first), goal <= 1 s,
   grouping alone the baseline; reading each run's episodes to its target is printed apart
   (once: a run that reached it is not read again, one that has not only for new rows);
   and those figures alone for 10,000 runs in groups of 3, 5, 10, 20 and 64 seeds (the
   bootstrap's cost depends on the group size; the file's groups are of about 500).

`.venv/bin/python bench/groups.py` (also a step of bench/run_all.py).
"""

from __future__ import annotations

import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from bench.common import Metric, big_database, load_note, median, ms, print_header, ratio
from tests.support.processes import child_env, stop_process
from velora_tui.data import seed_stats
from velora_tui.data.group_reads import ReachedReader, group_curve, read_configs, read_series
from velora_tui.data.groups import Group, group_runs, sort_groups
from velora_tui.data.monitor import Monitor
from velora_tui.data.records import Key
from velora_tui.data.series import SeriesReader, thin
from velora_tui.data.targets import target_for
from velora_tui.tui.screens.groups import RUN_POINTS, GroupChart, GroupChartState
from velora_tui.tui.widgets.charts import REWARD, ChartOptions, MetricChart, MetricState
from velora_tui.tui.widgets.plot import Build

RUNS = 20
EPISODES = 100_000
EXPERIMENTS = 10_000
REDRAW_GOAL = 0.200
GROUPING_GOAL = 1.0
SEED_GROUP_SIZES = (3, 5, 10, 20, 64)
WIDTH, HEIGHT = 120, 30
POINTS = 2 * WIDTH

# Episodes a second the writer adds, over the 20 runs (2 a second each), one commit each,
# each run in turn.
WRITE_RATE = 40
WRITER = """
import sqlite3, sys, time
path, runs, rate = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
conn = sqlite3.connect(path, isolation_level=None)
num = {}
for exp_id, last in conn.execute("SELECT experiment_id, max(episode_num) FROM episode GROUP BY 1"):
    num[exp_id] = last
ids = sorted(num)[:runs]
i = 0
start = time.monotonic()
while True:
    time.sleep(max(0.0, start + i / rate - time.monotonic()))
    exp = ids[i % len(ids)]
    num[exp] += 1
    conn.execute("BEGIN IMMEDIATE")
    conn.execute(
        "INSERT INTO episode (experiment_id, episode_num, reward, length, reward_moving_avg,"
        " reward_moving_std, actor_loss, critic_loss, entropy_loss, created_at)"
        " VALUES (?, ?, 400.0, 400, 400.0, 10.0, -1.0, 1.0, -0.1, ?)",
        (exp, num[exp], time.strftime('%Y-%m-%d %H:%M:%S.000000')),
    )
    conn.execute("COMMIT")
    i += 1
"""


def picture(paint: Any, state: Any) -> None:
    """Build a chart's picture as the chart's thread does (no widget is needed for it)."""
    Build(cast(Any, None), 0, (WIDTH, HEIGHT, "dark"), paint, state).picture()


def redraws(db: Path, rounds: int) -> tuple[list[float], list[float], list[float], float, int]:
    """Group and single-run redraw times while a writer writes; the first read's time; the
    rows the writer added meanwhile."""
    monitor = Monitor([db])
    monitor.refresh()
    database = monitor.databases[db]
    ids = sorted(s.id for s in monitor.summaries())[:RUNS]
    options = ChartOptions(smoothing=0.6)
    readers = [SeriesReader(database, exp_id, RUN_POINTS) for exp_id in ids]
    single = SeriesReader(database, ids[0])
    started = time.perf_counter()
    read_series(readers)
    first = time.perf_counter() - started
    single.read()
    before = database.summaries[ids[0]].episodes
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db), str(RUNS), str(WRITE_RATE)],
        stdin=subprocess.DEVNULL,
        env=child_env(),
    )
    group_times: list[float] = []
    group_cpu: list[float] = []  # CPU of this process (all its threads) in a redraw
    single_times: list[float] = []
    try:
        # Until the writer has added a row to every run (it first reads where each run is).
        top = max(database.summaries[i].last_id or 0 for i in ids)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and any(
            (database.summaries[i].last_id or 0) <= top for i in ids
        ):
            time.sleep(0.2)
            monitor.refresh()
        # Untimed: the runs of the file ended at different times, so a run's first new row is
        # far (in ids) from its last one; the first read after it crosses that gap once.
        monitor.refresh()
        read_series(readers)
        single.read()
        for _ in range(rounds):
            time.sleep(0.5)  # rows arrive between redraws (the chart redraws at most 1/s)
            started, cpu = time.perf_counter(), time.process_time()
            monitor.refresh()
            curve = group_curve(read_series(readers), POINTS, smoothing=options.smoothing)
            picture(GroupChart.paint, GroupChartState((curve,), options, "std"))
            group_times.append(time.perf_counter() - started)
            group_cpu.append(time.process_time() - cpu)
            time.sleep(0.25)
            started = time.perf_counter()
            monitor.refresh()
            series = thin(single.read(), POINTS)
            picture(MetricChart.paint, MetricState(REWARD, series, options))
            single_times.append(time.perf_counter() - started)
            time.sleep(0.5)
    finally:
        stop_process(writer)
    monitor.refresh()
    added = (database.summaries[ids[0]].episodes - before) * RUNS
    monitor.close()
    return group_times, group_cpu, single_times, first, added


def forget_figures() -> None:
    """The figures are remembered per set of values: each timed round computes them anew."""
    seed_stats._iqm_estimate.cache_clear()
    seed_stats._improvement_estimate.cache_clear()
    seed_stats._plan.cache_clear()
    seed_stats.resamples.cache_clear()


def with_figures(groups: list[Group], reached: dict[Key, float], targets: dict[Key, float]) -> None:
    """What `ls --group` computes for each group beyond grouping: the IQM and its bootstrap
    interval of the final and best rewards, and of the episodes to the target."""
    for group in groups:
        group.final_iqm()
        group.best_iqm()
        group.set_reached(reached, targets)
        group.to_target()


def grouping(db: Path, rounds: int) -> tuple[float, float, list[float], list[float], int]:
    """Configs and episodes to the targets read; then grouping alone (the baseline) and
    grouping with the figures, timed in turns."""
    monitor = Monitor([db])
    monitor.refresh()
    monitor.scan_all()
    summaries = monitor.summaries()
    started = time.perf_counter()
    configs = read_configs(monitor.databases, [s.key for s in summaries])
    reading = time.perf_counter() - started
    targets = {s.key: t for s in summaries if (t := target_for(s.env)) is not None}
    started = time.perf_counter()
    reached = ReachedReader().read(
        monitor.databases, [(s, targets[s.key]) for s in summaries if s.key in targets]
    )
    reaching = time.perf_counter() - started
    times, figured = [], []
    count = 0
    for _ in range(rounds):
        started = time.perf_counter()
        groups = sort_groups(group_runs(summaries, configs), datetime.now())
        times.append(time.perf_counter() - started)
        count = len(groups)
        forget_figures()
        started = time.perf_counter()
        with_figures(sort_groups(group_runs(summaries, configs), datetime.now()), reached, targets)
        figured.append(time.perf_counter() - started)
    monitor.close()
    return reading, reaching, times, figured, count


def seed_figures(size: int, runs: int = EXPERIMENTS) -> float:
    """Seconds for the IQM intervals of the final and best rewards of `runs` runs in groups
    of `size` (values alone, no database): the bootstrap's cost at the group sizes of seeds."""
    rng = random.Random(size)
    groups = [[rng.gauss(400, 60) for _ in range(size)] for _ in range(runs // size)]
    forget_figures()
    started = time.perf_counter()
    for values in groups:
        seed_stats.iqm_interval(values)
        seed_stats.iqm_interval([v + 25 for v in values])
    return time.perf_counter() - started


def main(rounds: int = 15) -> list[Metric]:
    source = big_database(RUNS, EPISODES, groups=[RUNS])
    many = big_database(EXPERIMENTS, 5)
    print_header(f"groups ({load_note()})")
    with tempfile.TemporaryDirectory(prefix="velora-groups-") as folder:
        db = Path(folder) / "metrics.db"
        shutil.copyfile(source, db)  # the writer must not change the cached file
        group_times, group_cpu, single_times, first, added = redraws(db, rounds)
    group_ms, single_ms = median(group_times), median(single_times)
    print(
        f"first read of {RUNS} x {EPISODES:,} episodes: {first:.2f} s;"
        f" then {rounds} redraws while a writer added {added:,} episodes"
    )
    print(f"  group chart ({RUNS} runs) redraw: median {ms(group_ms)}, max {ms(max(group_times))}")
    print(f"  group chart redraw, CPU of this process: median {ms(median(group_cpu))}")
    print(f"  one run's reward chart redraw:  median {ms(single_ms)}, max {ms(max(single_times))}")
    reading, reaching, times, figured, count = grouping(many, max(3, rounds // 3))
    print(
        f"{EXPERIMENTS:,} experiments: configs read and parsed in {reading:.2f} s;"
        f" episodes to the target read in {reaching:.2f} s;"
        f" grouped into {count} groups in median {ms(median(times))}"
    )
    print(
        f"  grouped with the IQM intervals of final and best reward and episodes to the"
        f" target: median {ms(median(figured))}"
        f" ({ratio(median(figured), median(times)):.1f}x grouping alone)"
    )
    sizes = {size: seed_figures(size) for size in SEED_GROUP_SIZES}
    print(
        f"  IQM intervals (final and best) of {EXPERIMENTS:,} runs in groups of "
        + ", ".join(f"{size}: {ms(seconds)}" for size, seconds in sizes.items())
    )
    return [
        Metric(
            f"group chart redraw, {RUNS} runs x {EPISODES // 1000}k episodes, writer running"
            " (median / max)",
            f"<= {REDRAW_GOAL * 1000:.0f} ms",
            f"{ms(group_ms)} / {ms(max(group_times))}",
            group_ms <= REDRAW_GOAL,
        ),
        Metric(f"group chart redraw CPU, {RUNS} runs (median)", "-", ms(median(group_cpu))),
        Metric(
            "group chart redraw / one run's chart redraw",
            "-",
            f"{ratio(group_ms, single_ms):.1f}x",
        ),
        Metric(f"group chart first read, {RUNS * EPISODES:,} rows", "-", f"{first:.2f} s"),
        Metric(
            f"grouping {EXPERIMENTS:,} experiments (median)",
            f"<= {GROUPING_GOAL:.0f} s",
            ms(median(times)),
            median(times) <= GROUPING_GOAL,
        ),
        Metric(f"reading {EXPERIMENTS:,} configs", "-", f"{reading:.2f} s"),
        Metric(
            f"reading {EXPERIMENTS:,} runs' episodes to the target (once)",
            "-",
            f"{reaching:.2f} s",
        ),
        Metric(
            f"grouping {EXPERIMENTS:,} experiments with IQM intervals (median)",
            f"<= {GROUPING_GOAL:.0f} s",
            ms(median(figured)),
            median(figured) <= GROUPING_GOAL,
        ),
        *(
            Metric(
                f"IQM intervals of {EXPERIMENTS:,} runs in groups of {size}",
                f"<= {GROUPING_GOAL:.0f} s",
                ms(seconds),
                seconds <= GROUPING_GOAL,
            )
            for size, seconds in sizes.items()
        ),
    ]


if __name__ == "__main__":
    for metric in main():
        print(f"{metric.name}: {metric.measured} (goal {metric.goal}) {metric.verdict()}")
