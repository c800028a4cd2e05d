"""Slurm's cost: the app at rest on `slurm:` with 50 jobs of the user's on a real one-node
cluster (tests/support/slurm.py: 12 running, 38 pending; 10 of them with a finished run in their
folder), against the same app on the same folders named as plain directories (the baseline,
same run). Goals (issue 23): Slurm asked at most once every few seconds (slurm_client.INTERVAL:
5 s), and the app's idle CPU below 1% of a core.

Slurm's commands are counted by wrappers put first on the app's PATH (each logs a line, then
runs the real one). The app runs headless in a child interpreter (Textual's test driver renders
every frame, as a terminal would), which reports its own CPU share over the measured stretch,
and that of the Slurm commands it ran (its children) apart.
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import Metric, load_note, print_header, timed_env
from tests.support.slurm import missing, running_cluster

SAMPLE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "sample-0.2.0.db"
GOAL = 1.0  # % of a core
JOBS = 50
WITH_RUNS = 10
SETTLE = 8.0

APP = """
import asyncio, resource, sys, time
from pathlib import Path
from velora_tui.data.monitor import Monitor
from velora_tui.data.slurm_monitor import open_slurm
from velora_tui.tui.app import Settings, VeloraApp

kind, settle, seconds = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
folders = sys.argv[4:]

def children():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime

async def main():
    monitor = open_slurm(["slurm:"], wait=False) if kind == "slurm" else Monitor(folders)
    app = VeloraApp(monitor, Settings())
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.pause(settle)
        cpu, kids, wall = time.process_time(), children(), time.perf_counter()
        await asyncio.sleep(seconds)
        spent = time.perf_counter() - wall
        rows = len(monitor.summaries())
        print(
            (time.process_time() - cpu) / spent, (children() - kids) / spent, rows, flush=True
        )

asyncio.run(main())
"""

WRAPPER = """#!/bin/sh
echo "$(date +%s.%N) {name}" >> {log}
exec {real} "$@"
"""


def wrappers(folder: Path, log: Path) -> Path:
    """A folder of squeue, sacct and scontrol that log each call, then run the real one."""
    folder.mkdir()
    for name in ("squeue", "sacct", "scontrol"):
        real = shutil.which(name)
        if real is None:
            continue
        path = folder / name
        path.write_text(WRAPPER.format(name=name, log=log, real=real))
        path.chmod(0o755)
    return folder


def app_idle(kind: str, folders: list[Path], path_dir: Path, seconds: float) -> tuple[float, ...]:
    env = timed_env()
    env["PATH"] = f"{path_dir}{os.pathsep}{env.get('PATH', '')}"
    result = subprocess.run(
        [sys.executable, "-c", APP, kind, str(SETTLE), str(seconds), *map(str, folders)],
        capture_output=True,
        text=True,
        env=env,
        timeout=SETTLE + seconds + 120,
    )
    if result.returncode != 0:
        raise RuntimeError(f"the app failed: {result.stderr[-800:]}")
    own, children, rows = result.stdout.split()
    return float(own), float(children), float(rows)


def calls(log: Path) -> list[tuple[float, str]]:
    if not log.exists():
        return []
    found = []
    for line in log.read_text().splitlines():
        stamp, _, name = line.partition(" ")
        found.append((float(stamp), name))
    return found


def main(seconds: float = 60.0) -> list[Metric]:
    print_header(f"Slurm: the app at rest with {JOBS} jobs over {seconds:g} s ({load_note()})")
    why = missing()
    if why is not None:
        print(f"  skipped: {why}")
        return []
    with tempfile.TemporaryDirectory(prefix="velora-bench-slurm-") as name:
        root = Path(name)
        with running_cluster(root / "cluster") as cluster:
            folders = []
            for n in range(JOBS):
                folder = root / "jobs" / f"job-{n:02d}"
                folder.mkdir(parents=True)
                if n < WITH_RUNS:
                    shutil.copyfile(SAMPLE, folder / "metrics.db")
                cluster.sbatch("-t", "30", "--wrap", "sleep 1000", cwd=folder)
                folders.append(folder)
            # The sample's runs were written long before these jobs: a job is tied to the runs
            # created while it ran, so they show without one; the cost is the same.
            log = root / "calls.log"
            path_dir = wrappers(root / "bin", log)
            time.sleep(2)
            base_own, _, base_rows = app_idle("folders", folders, path_dir, seconds)
            before = len(calls(log))
            started = time.time()
            own, children, rows = app_idle("slurm", folders, path_dir, seconds)
            ended = time.time()
            made = calls(log)[before:]
            measured = [c for c in made if started + SETTLE <= c[0] <= ended]
            squeues = sum(1 for _, what in measured if what == "squeue")
            gaps = [b[0] - a[0] for a, b in itertools.pairwise(made) if b[1] == "squeue"]
            every = seconds / squeues if squeues else float("inf")
            print(
                f"  baseline (the {JOBS} folders as directories): app {base_own:.2%} of a core,"
                f" {base_rows:.0f} runs"
            )
            print(
                f"  slurm: app {own:.2%} of a core, its Slurm commands {children:.2%},"
                f" {rows:.0f} runs"
            )
            print(
                f"  Slurm commands while measured: {len(measured)} ({squeues} squeue: one every"
                f" {every:.1f} s; shortest gap {min(gaps, default=0):.1f} s)"
            )
    return [
        Metric(
            f"app idle CPU on slurm: with {JOBS} jobs (same folders as directories: baseline)",
            f"< {GOAL:g}% of a core",
            f"{own:.2%} + {children:.2%} in squeue ({base_own:.2%})",
            own * 100 < GOAL,
        ),
        Metric(
            f"squeue calls at rest with {JOBS} jobs",
            "at most one every 5 s",
            f"one every {every:.1f} s",
            every >= 5.0 * 0.95,
        ),
    ]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0, help="measured stretch")
    main(parser.parse_args().seconds)
