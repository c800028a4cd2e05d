"""Slurm is asked at most once an interval (data/slurm_client.INTERVAL): 50 jobs on a real
one-node cluster, `alerts -f slurm:` following them (its heartbeat and its status each ask the
client every second), Slurm's commands counted by wrappers first on PATH. That one process asks
once however many ask inside it is tests/unit/test_slurm.py's (200 asks, one call)."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import time
from pathlib import Path

from tests.support.processes import child_env, python_command, stop_process
from tests.support.slurm import running_cluster
from tests.support.waiting import wait_for
from velora_tui.data.slurm_client import INTERVAL

JOBS = 50
WRAPPER = '#!/bin/sh\necho "$(date +%s.%N) {name}" >> {log}\nexec {real} "$@"\n'


def counting_path(folder: Path, log: Path) -> str:
    """A PATH whose squeue, sacct and scontrol log each call, then run the real one."""
    folder.mkdir()
    for name in ("squeue", "sacct", "scontrol"):
        real = shutil.which(name)
        assert real is not None
        (folder / name).write_text(WRAPPER.format(name=name, log=log, real=real))
        (folder / name).chmod(0o755)
    return f"{folder}{os.pathsep}{os.environ.get('PATH', '')}"


def test_fifty_jobs_asked_at_most_once_an_interval(tmp_path: Path) -> None:
    with running_cluster(tmp_path / "cluster") as cluster:
        for n in range(JOBS):
            folder = tmp_path / "jobs" / f"job-{n:02d}"
            folder.mkdir(parents=True)
            cluster.sbatch("-t", "10", "--wrap", "sleep 600", cwd=folder)
        log = tmp_path / "calls.log"
        env = child_env() | {"PATH": counting_path(tmp_path / "bin", log)}
        follow = subprocess.Popen(
            python_command("alerts", "-f", "slurm:", "--json"),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        try:
            wait_for(log.exists, 30, what="the first squeue")
            started = time.monotonic()
            first = len(log.read_text().splitlines())
            # The follower at rest, asked nothing more; a few seconds more than 3 intervals.
            wait_for(lambda: time.monotonic() - started > 3 * INTERVAL + 1, 60, 0.5)
            assert follow.poll() is None
        finally:
            stop_process(follow)
        calls = [line.split() for line in log.read_text().splitlines()]
        stamps = [float(stamp) for stamp, name in calls if name == "squeue"]
        gaps = [b - a for a, b in itertools.pairwise(stamps)]
        assert len(stamps) >= 2, calls  # it kept asking
        assert min(gaps) >= INTERVAL * 0.9, gaps  # never sooner than an interval apart
        assert first >= 1
        # The jobs all running or pending, none ended: nothing else was asked.
        assert {name for _, name in calls} == {"squeue"}
