"""Idle CPU on a big directory tree: `velora-tui tail -f` and the app at rest, on a tree of
10,000 directories holding 10 databases, and on a tree of 3 directories holding 3 (the
baseline, same run). Goal: below 1% of a core on the big tree (issue 26).

Each reader runs as a process of its own; once its first read is done (and a settling time),
its CPU time (user + system, /proc) is read over a stretch of wall time. The app runs headless
(Textual's test driver renders every frame, as a terminal would) in a child interpreter that
reports its own CPU time over the same stretch.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench.common import (
    Metric,
    load_note,
    print_header,
    process,
    scratch_dir,
    timed_env,
)
from tests.support.numbers import cpu_seconds
from tests.support.processes import python_command

SAMPLE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "sample-0.2.0.db"
GOAL = 1.0  # % of a core
SETTLE = 8.0  # seconds after start before measuring (first read, first walks)

# The app, headless, in a child: prints its CPU seconds over `seconds` after `settle`.
APP = """
import asyncio, sys, time
from velora_tui.data.monitor import Monitor
from velora_tui.tui.app import Settings, VeloraApp

root, settle, seconds = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])

async def main():
    app = VeloraApp(Monitor([root]), Settings())
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(settle)
        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.sleep(seconds)
        used = time.process_time() - cpu
        print(used / (time.perf_counter() - wall), app.feed_description(), flush=True)

asyncio.run(main())
"""


def make_tree(root: Path, directories: int, databases: int) -> int:
    """`directories` directories below `root` (100 to a level, then their children), with a copy
    of the sample database in `databases` of the deepest, spread out. Returns how many
    directories were made."""
    made = 0
    leaves: list[Path] = []
    top = max(1, min(100, directories // 100))
    per_top = max(0, directories // top - 1)
    for i in range(top):
        parent = root / f"group-{i:03d}"
        parent.mkdir(parents=True)
        made += 1
        for j in range(per_top):
            if made >= directories:
                break
            leaf = parent / f"run-{j:03d}"
            leaf.mkdir()
            leaves.append(leaf)
            made += 1
    while made < directories:
        leaf = root / f"extra-{made}"
        leaf.mkdir()
        leaves.append(leaf)
        made += 1
    leaves = leaves or [root]
    step = max(1, len(leaves) // databases)
    for n in range(databases):
        shutil.copyfile(SAMPLE, leaves[(n * step) % len(leaves)] / "metrics.db")
    return made


def tail_idle(root: Path, folder: Path, seconds: float) -> tuple[float, str]:
    """`tail -f -n 0 ROOT` at rest: its share of a core, and what it said on stderr."""
    errors = folder / "tail.stderr"
    command = python_command("tail", "-f", "-n", "0", root)
    with process(command, stdout=subprocess.DEVNULL, stderr=errors) as tail:
        time.sleep(SETTLE)
        before, wall = cpu_seconds(tail.pid), time.monotonic()
        time.sleep(seconds)
        used = cpu_seconds(tail.pid) - before
        share = used / (time.monotonic() - wall)
    return share, errors.read_text(errors="replace").strip()


def app_idle(root: Path, seconds: float) -> tuple[float, str]:
    """The app at rest on ROOT: its share of a core, and its feed's state."""
    result = subprocess.run(
        [sys.executable, "-c", APP, str(root), str(SETTLE), str(seconds)],
        capture_output=True,
        text=True,
        env=timed_env(),
        timeout=SETTLE + seconds + 120,
    )
    if result.returncode != 0:
        raise RuntimeError(f"the app failed: {result.stderr[-800:]}")
    share, feed = result.stdout.split(maxsplit=1)
    return float(share), feed.strip()


def main(seconds: float = 60.0) -> list[Metric]:
    print_header(f"idle CPU at rest over {seconds:g} s ({load_note()})")
    trees = [("3 directories, 3 databases", 3, 3), ("10,000 directories, 10 databases", 10_000, 10)]
    results: dict[str, dict[str, float]] = {}
    for label, directories, databases in trees:
        with scratch_dir("idle-") as folder:
            root = folder / "tree"
            started = time.perf_counter()
            made = make_tree(root, directories, databases)
            print(f"  {label}: made {made:,} directories in {time.perf_counter() - started:.1f} s")
            tail, said = tail_idle(root, folder, seconds)
            app, feed = app_idle(root, seconds)
            results[label] = {"tail": tail, "app": app}
            note = f" (stderr: {said[:200]!r})" if said else ""
            print(f"    tail -f: {tail:.2%} of a core{note}")
            print(f"    app:     {app:.2%} of a core (feed: {feed})")
    big = results[trees[1][0]]
    small = results[trees[0][0]]
    return [
        Metric(
            "tail -f idle CPU, 10,000 dirs / 10 dbs (3 dirs: baseline)",
            f"< {GOAL:g}% of a core",
            f"{big['tail']:.2%} ({small['tail']:.2%})",
            big["tail"] * 100 < GOAL,
        ),
        Metric(
            "app idle CPU, 10,000 dirs / 10 dbs (3 dirs: baseline)",
            f"< {GOAL:g}% of a core",
            f"{big['app']:.2%} ({small['app']:.2%})",
            big["app"] * 100 < GOAL,
        ),
    ]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0, help="measured stretch")
    main(parser.parse_args().seconds)
