"""Start-up at size: does opening a bigger file cost more than opening a smaller one?

Start-up should grow with the number of experiments, not of episodes. Two files of 100
experiments, 1M and 5M episodes (episode_num 1..n in each; half the runs trained one after
another, the others in groups of 5 at once, their rows interleaved as parallel runs commit
them), built once and cached under bench/out/. At both sizes, in interleaved rounds:

- the app's first rows: `velora-tui DB` on a pseudo-terminal (120x40), from creating its
  process until an experiment's env name has been written to the terminal; also its first
  frame (its title written), to tell start-up from reading;
- floors, started the same way (bench/floor_app.py): a bare Textual app with a DataTable of a
  few fixed rows, and the same app showing rows from one raw `GROUP BY experiment_id` summary;
- `velora-tui tail -n 1`, `show 1`, `ls --json`, and the sqlite3 CLI running ls's summary in one
  statement (bench/ls_speed.py's), wall time;
- peak RSS of each.

Speed is given as ratios measured in the same run (5M / 1M, app / floor, ls / sqlite3): this
machine's speed drifts and others differ up to 3x. Nothing here asserts: it prints.
`.venv/bin/python bench/startup.py [--quick] [--rounds N] [--sizes 1,5]` (millions of episodes).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import (
    OUT,
    Metric,
    big_database,
    load_note,
    median,
    print_header,
    run_command,
    timed_env,
)
from bench.ls_speed import ls_command, sqlite_command
from tests.support.processes import Terminal, python_command
from velora_tui.writer.simulate import RUNS

EXPERIMENTS = 100
# Five runs alone, then five at once; ten times.
GROUPS = (1, 1, 1, 1, 1, 5) * 10
ENVS = tuple(sorted({env for _, env, _ in RUNS}))
SIZE = (120, 40)
TIMEOUT = 120.0  # for one start; today's 5M start takes seconds
SETTLE = (
    2.0  # after the first rows, before reading the peak RSS (the scan that adds up the first load)
)

GOAL_SIZE = 1.2  # first rows and tail -n 1: 5M within this of 1M
GOAL_FLOOR = 1.5  # first rows within this of the bare Textual app
GOAL_LS = 2.5  # ls within this of the sqlite3 CLI


@dataclass
class Samples:
    """Seconds and peak MiB of one thing measured at one size, a sample per round."""

    seconds: list[float] = field(default_factory=list)
    mib: list[float] = field(default_factory=list)

    def add(self, seconds: float, mib: float) -> None:
        self.seconds.append(seconds)
        self.mib.append(mib)

    @property
    def time(self) -> float:
        return median(self.seconds)

    @property
    def memory(self) -> float:
        return median(self.mib)

    def spread(self) -> str:
        if len(self.seconds) < 2:
            return ""
        return f" ({min(self.seconds):.2f}-{max(self.seconds):.2f})"


def peak_rss_mib(pid: int) -> float:
    """The process's peak RSS so far (VmHWM), NaN if unknown."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return math.nan


def first_shown(terminal: Terminal, texts: Sequence[str], timeout: float) -> float:
    """Seconds from the process's creation until the first of `texts` was wholly written to the
    terminal; NaN if none was within `timeout` or the process ended first."""
    deadline = time.monotonic() + timeout
    while True:
        stamps = [terminal.shown_at(text) for text in texts]
        found = [stamp for stamp in stamps if not math.isnan(stamp)]
        if found:
            return min(found) - terminal.started
        if terminal.proc.poll() is not None or time.monotonic() >= deadline:
            return math.nan
        time.sleep(0.005)


def start_on_terminal(command: list[str], title: str) -> tuple[float, float, float]:
    """(first frame s, first rows s, peak MiB) of a Textual app started on a terminal."""
    terminal = Terminal(command, SIZE, env=timed_env())
    try:
        rows = first_shown(terminal, ENVS, TIMEOUT)
        frame = first_shown(terminal, [title], 0.0)
        if math.isnan(rows):
            tail = bytes(terminal.output[-300:]).decode(errors="replace")
            raise RuntimeError(
                f"{' '.join(command)}: no experiment rows shown; ended with {tail!r}"
            )
        time.sleep(SETTLE)
        peak = peak_rss_mib(terminal.proc.pid)
    finally:
        terminal.close()
    return frame, rows, peak


def warm(path: Path) -> None:
    """Read the whole file once so every run finds it in the page cache."""
    with path.open("rb") as handle:
        while handle.read(1 << 24):
            pass


@dataclass
class Results:
    sizes: list[str]
    frames: dict[str, Samples] = field(default_factory=dict)
    things: dict[tuple[str, str], Samples] = field(default_factory=dict)

    def at(self, name: str, size: str) -> Samples:
        return self.things.setdefault((name, size), Samples())


APP = "app: first rows"
FRAME = "app: first frame"
BARE = "floor: bare Textual app"
SQL_FLOOR = "floor: Textual + raw SQL"
TAIL = "tail -n 1"
SHOW = "show 1"
LS = "ls --json"
SQLITE = "sqlite3 CLI summary"


def one_round(results: Results, files: dict[str, Path]) -> None:
    floor = [sys.executable, "-m", "bench.floor_app"]
    frame, rows, peak = start_on_terminal(floor, "floor")
    for size in results.sizes:  # no file: the same figure at every size
        results.at(BARE, size).add(rows, peak)
    for size, db in files.items():
        frame, rows, peak = start_on_terminal([*floor, str(db)], "floor")
        results.at(SQL_FLOOR, size).add(rows, peak)
        frame, rows, peak = start_on_terminal(python_command(db), "velora-tui")
        results.at(APP, size).add(rows, peak)
        results.at(FRAME, size).add(frame, peak)
        commands: list[tuple[str, list[str]]] = [
            (TAIL, python_command("tail", "-n", "1", db)),
            (SHOW, python_command("show", "1", db)),
            (LS, ls_command(db)),
            (SQLITE, sqlite_command(db)),
        ]
        for name, command in commands:
            results.at(name, size).add(*run_command(command))


def ratio_text(value: float, goal: float | None = None) -> str:
    text = "    -" if math.isnan(value) else f"{value:5.2f}x"
    if goal is not None and not math.isnan(value):
        text += f"  (goal <= {goal}x: {'met' if value <= goal else 'NOT met'})"
    return text


def report(results: Results) -> list[Metric]:
    sizes = results.sizes
    small, big = sizes[0], sizes[-1]
    names = [APP, FRAME, BARE, SQL_FLOOR, TAIL, SHOW, LS, SQLITE]
    width = 28
    print(f"\nwall time, median of {len(results.at(APP, small).seconds)} rounds (range):")
    print(f"  {'':<{width}}" + "".join(f"{s:>20}" for s in sizes) + f"   {big}/{small}")

    def growth(name: str) -> float:
        return results.at(name, big).time / results.at(name, small).time

    for name in names:
        cells = "".join(
            f"{results.at(name, s).time:>8.2f} s{results.at(name, s).spread():<10}" for s in sizes
        )
        goal = GOAL_SIZE if name in (APP, TAIL) else None
        print(f"  {name:<{width}}{cells}  {ratio_text(growth(name), goal)}")

    print("\nratios at each size:")
    pairs: list[tuple[str, Callable[[str], float], float | None]] = [
        (
            "app first rows / bare Textual",
            lambda s: results.at(APP, s).time / results.at(BARE, s).time,
            GOAL_FLOOR,
        ),
        (
            "app first rows / Textual + raw SQL",
            lambda s: results.at(APP, s).time / results.at(SQL_FLOOR, s).time,
            None,
        ),
        (
            "app first frame / bare Textual",
            lambda s: results.at(FRAME, s).time / results.at(BARE, s).time,
            None,
        ),
        ("ls / sqlite3", lambda s: results.at(LS, s).time / results.at(SQLITE, s).time, GOAL_LS),
    ]
    for label, compute, goal in pairs:
        cells = "   ".join(f"{s}: {ratio_text(compute(s), goal)}" for s in sizes)
        print(f"  {label:<{width + 8}}{cells}")

    print("\npeak RSS, MiB (median):")
    print(f"  {'':<{width}}" + "".join(f"{s:>10}" for s in sizes) + f"   {big}/{small}")
    for name in (APP, SQL_FLOOR, BARE, TAIL, SHOW, LS, SQLITE):
        cells = "".join(f"{results.at(name, s).memory:>10.0f}" for s in sizes)
        grown = results.at(name, big).memory / results.at(name, small).memory
        print(f"  {name:<{width}}{cells}   {ratio_text(grown)}")
    print(
        "  (the app's and floors' after their first rows plus 2 s; each command's over its"
        " run, at least the ~8 MiB of the small process that starts and times it)"
    )

    first_rows = growth(APP)
    over_floor = results.at(APP, big).time / results.at(BARE, big).time
    tail_growth = growth(TAIL)
    ls_ratio = results.at(LS, big).time / results.at(SQLITE, big).time
    return [
        Metric(
            f"app first rows, {small} / {big} episodes",
            "-",
            f"{results.at(APP, small).time:.2f} s / {results.at(APP, big).time:.2f} s",
        ),
        Metric(
            f"app first rows {big} / {small}",
            f"<= {GOAL_SIZE}x",
            f"{first_rows:.2f}x",
            first_rows <= GOAL_SIZE,
        ),
        Metric(
            f"app first rows / bare Textual app start, {big}",
            f"<= {GOAL_FLOOR}x",
            f"{over_floor:.2f}x",
            over_floor <= GOAL_FLOOR,
        ),
        Metric(
            f"tail -n 1 {big} / {small}",
            f"<= {GOAL_SIZE}x",
            f"{tail_growth:.2f}x",
            tail_growth <= GOAL_SIZE,
        ),
        Metric(
            f"ls / sqlite3, {big}",
            f"<= {GOAL_LS}x",
            f"{ls_ratio:.2f}x",
            ls_ratio <= GOAL_LS,
        ),
        Metric(
            f"app peak memory, {small} / {big}",
            "-",
            f"{results.at(APP, small).memory:.0f} / {results.at(APP, big).memory:.0f} MiB",
        ),
    ]


def size_label(millions: float) -> str:
    return f"{millions:g}M"


def main(rounds: int = 3, sizes: Sequence[float] = (1.0, 5.0)) -> list[Metric]:
    files: dict[str, Path] = {}
    for millions in sizes:
        per_experiment = round(millions * 1_000_000 / EXPERIMENTS)
        files[size_label(millions)] = big_database(EXPERIMENTS, per_experiment, groups=GROUPS)
    print_header(
        f"start-up at size: {EXPERIMENTS} experiments, "
        + " and ".join(f"{label} episodes" for label in files)
        + f" ({load_note()})"
    )
    for path in files.values():
        print(f"  {path.relative_to(OUT.parent.parent)}: {path.stat().st_size / 1e6:.0f} MB")
        warm(path)
    results = Results(list(files))
    one_round(Results(list(files)), files)  # warm-up: bytecode, page cache, first-run costs
    for index in range(rounds):
        started = time.perf_counter()
        one_round(results, files)
        print(f"  round {index + 1}/{rounds}: {time.perf_counter() - started:.0f} s", flush=True)
    return report(results)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="one round (noisier)")
    parser.add_argument(
        "--sizes",
        default="1,5",
        help="millions of episodes of each file, smallest first (default 1,5)",
    )
    args = parser.parse_args()
    main(1 if args.quick else args.rounds, [float(s) for s in args.sizes.split(",")])
