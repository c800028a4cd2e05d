"""Run every benchmark in sequence, then print a markdown summary table for README.md.

`.venv/bin/python bench/run_all.py` (or `make bench`). Each benchmark runs in a fresh process
of its own (so one's memory, imports or threads cannot skew another's numbers) and hands its
metrics back as JSON. The first run also builds its databases under bench/out/ (1M rows
twice, ~10 s each; 5M rows for bench/startup.py, ~65 s and 610 MB on the 2-core machine).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy
import sqlmodel
import watchfiles

from bench.common import OUT, Metric, big_database, load_note

# (module in bench/, keyword arguments for its main() in --quick mode)
STEPS: list[tuple[str, dict[str, int]]] = [
    ("tail_latency", {}),
    ("writer_impact", {"rounds": 3}),
    ("ls_speed", {"runs": 3}),
    ("idle", {"seconds": 30}),  # tail -f and the app at rest on a 10,000-directory tree
    ("app", {}),  # the app's own benchmark (bench/app.py), when it is there
    ("app_keys", {}),
    ("startup", {"rounds": 1}),
    ("new_experiment", {"tries": 5}),
    ("remote", {"rounds": 1}),  # runs on another host, through a loopback sshd
    ("groups", {"rounds": 8}),
    ("health", {"rounds": 2}),
    ("serve", {}),  # the app in a browser (bench/serve.py; needs Chromium)
    ("slurm", {"seconds": 30}),  # the app at rest on slurm: with 50 jobs (a one-node cluster)
]


def table(metrics: list[Metric]) -> str:
    lines = ["| metric | goal | measured | met |", "| --- | --- | --- | --- |"]
    lines += [f"| {m.name} | {m.goal} | {m.measured} | {m.verdict()} |" for m in metrics]
    return "\n".join(lines)


def run_step(name: str, quick: bool) -> tuple[list[Metric], bool]:
    """One benchmark in a child process (its output goes straight to ours): its metrics, and
    whether it ran to its end."""
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=OUT, prefix=f"{name}-", suffix=".json") as handle:
        command = [sys.executable, __file__, "--step", name, "--metrics-out", handle.name]
        if quick:
            command.append("--quick")
        result = subprocess.run(command)
        text = Path(handle.name).read_text()
    if result.returncode != 0 or not text:
        return [
            Metric(f"{name} benchmark", "-", f"failed (exit {result.returncode})", False)
        ], False
    return [Metric(**item) for item in json.loads(text)], True


def step_main(name: str, quick: bool, metrics_out: Path) -> None:
    """Inside the child: run bench/NAME.py's main() and write its metrics."""
    module = importlib.import_module(f"bench.{name}")
    kwargs = dict(dict(STEPS)[name]) if quick else {}
    metrics: list[Metric] = module.main(**kwargs)
    metrics_out.write_text(json.dumps([dataclasses.asdict(m) for m in metrics]))


def main(quick: bool = False) -> None:
    started = time.perf_counter()
    big_database()  # built (once) before anything is timed
    metrics: list[Metric] = []
    durations: list[tuple[str, float]] = []
    failed: list[str] = []
    for name, _ in STEPS:
        if not (Path(__file__).parent / f"{name}.py").exists():
            continue
        step_started = time.perf_counter()
        step_metrics, ok = run_step(name, quick)
        metrics += step_metrics
        if not ok:
            failed.append(name)
        durations.append((name, time.perf_counter() - step_started))

    print("\n== summary ==")
    print(
        f"\nMeasured on {platform.system()} {platform.machine()}, {load_note()},"
        f" Python {platform.python_version()}, SQLite {sqlite3.sqlite_version},"
        f" SQLAlchemy {sqlalchemy.__version__}, sqlmodel {sqlmodel.__version__},"
        f" watchfiles {watchfiles.__version__}.\n"
    )
    print(table(metrics))
    took = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in durations)
    print(f"\n(took {time.perf_counter() - started:.0f} s: {took})", file=sys.stderr)
    if failed:
        # A benchmark that fails found a bug (bench/app.py: an episode that never reached the
        # screen) or broke: make bench must not look like a success.
        sys.exit(f"failed: {', '.join(failed)} (see above)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer rounds (noisier)")
    parser.add_argument("--step", choices=[name for name, _ in STEPS], help=argparse.SUPPRESS)
    parser.add_argument("--metrics-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step:
        step_main(args.step, args.quick, args.metrics_out)
    else:
        main(args.quick)
