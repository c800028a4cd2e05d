"""Slurm jobs on a real one-node cluster (tests/support/slurm.py): jobs that run `velora-tui
simulate` complete, fail (exit 1), are cancelled, pend behind another, run out of time, run as
an array of 3 seeds (each in its own folder) and as an array writing one file; `ls slurm:` and
`alerts slurm:` say what happened to each, as a user runs them.

The jobs are submitted once for the module and run side by side; each test waits for what it
checks. The TIMEOUT job has Slurm's shortest limit (1 minute), so the module takes about as
long."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.app import cell_texts, table
from tests.support.cli import Lines, check_output, run_cli, strict_json
from tests.support.processes import child_env, python_command, stop_process
from tests.support.slurm import SlurmCluster, running_cluster
from tests.support.waiting import until, wait_for
from velora_tui.tui.app import Settings, make_app
from velora_tui.tui.widgets.status_bar import StatusBar

# A job name made to run commands if it ever reached a shell, and to colour a terminal.
BAIT = "bait $(touch /tmp/velora-slurm-pwned) `id` \x1b[31mred"


def simulate(db: str, episodes: int, rate: float, *extra: str) -> str:
    """A job's shell line that runs the simulator (sbatch --wrap runs it with /bin/sh)."""
    words = [
        sys.executable,
        "-m",
        "velora_tui",
        "simulate",
        db,
        "--episodes",
        str(episodes),
        "--rate",
        str(rate),
        *extra,
    ]
    return " ".join(shlex.quote(w) for w in words)


@dataclass
class Jobs:
    cluster: SlurmCluster
    work: Path
    done: str
    failed: str
    cancelled: str
    timeout: str
    pending: str
    seeds: str
    shared: str
    follow: subprocess.Popen[bytes]  # `alerts -f slurm: --json`, started with the jobs


@pytest.fixture(scope="module")
def jobs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Jobs]:
    root = tmp_path_factory.mktemp("slurm-jobs")
    with running_cluster(root / "cluster") as cluster:
        work = root / "work"
        folders = {
            n: work / n for n in ("done", "failed", "cancel", "timeout", "pend", "sweep", "shared")
        }
        for folder in folders.values():
            folder.mkdir(parents=True)
        done = cluster.sbatch(
            "-J", BAIT, "--wrap", simulate("metrics.db", 40, 40), cwd=folders["done"]
        )
        # Killed 2 s after its first rows, then exit 1 (however slowly a loaded machine starts it).
        failed = cluster.sbatch(
            "--wrap",
            simulate("metrics.db", 1000, 20)
            + " & until [ -s metrics.db ]; do sleep 0.2; done; sleep 2; kill $!; exit 1",
            cwd=folders["failed"],
        )
        cancelled = cluster.sbatch(
            "--wrap", simulate("metrics.db", 5000, 10), cwd=folders["cancel"]
        )
        # 1000 episodes at 5 a second need 200 s; Slurm gives it 1 minute.
        timeout = cluster.sbatch(
            "-t", "1", "--wrap", simulate("metrics.db", 1000, 5), cwd=folders["timeout"]
        )
        pending = cluster.sbatch(
            f"--dependency=afterok:{timeout}",
            "--wrap",
            simulate("metrics.db", 10, 10),
            cwd=folders["pend"],
        )
        # Each task in a folder of its own, named by its index (the shell expands it there).
        seeds = cluster.sbatch(
            "--array=0-2",
            "--wrap",
            'mkdir -p "seed$SLURM_ARRAY_TASK_ID" && cd "seed$SLURM_ARRAY_TASK_ID" && '
            + simulate("metrics.db", 30, 30)
            + ' --seed "$SLURM_ARRAY_TASK_ID"',
            cwd=folders["sweep"],
        )
        shared = cluster.sbatch(
            "--array=0-1", "--wrap", simulate("metrics.db", 200, 20), cwd=folders["shared"]
        )
        follow = subprocess.Popen(
            python_command("alerts", "-f", "slurm:", "--json"),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=child_env(),
        )
        try:
            yield Jobs(
                cluster, work, done, failed, cancelled, timeout, pending, seeds, shared, follow
            )
        finally:
            stop_process(follow)


def listed(*args: str) -> list[dict[str, Any]]:
    result = run_cli("ls", "slurm:", "--json", *args)
    assert result.code == 0, result.err
    data: list[dict[str, Any]] = strict_json(result.out)
    return data


def by_job(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    found = {}
    for item in items:
        slurm = item.get("slurm") or {}
        for job_id in [slurm.get("job_id"), *slurm.get("job_ids", [])]:
            if job_id:
                found[job_id] = item
    return found


def test_ls_shows_each_job_with_its_run_and_state(jobs: Jobs) -> None:
    cluster = jobs.cluster
    wait_for(lambda: cluster.job_state(jobs.cancelled) == "RUNNING", 30, what="a running job")
    wait_for(
        lambda: (by_job(listed()).get(jobs.cancelled, {}).get("episodes") or 0) >= 3,
        30,
        0.5,
        "episodes of the job to cancel",
    )
    cluster.run("scancel", jobs.cancelled)
    ended = {jobs.done: "COMPLETED", jobs.failed: "FAILED", jobs.cancelled: "CANCELLED"}
    wait_for(
        lambda: all(cluster.job_state(j) == s for j, s in ended.items()), 60, 0.5, "the jobs to end"
    )

    items = listed()
    runs = by_job(items)
    done = runs[jobs.done]
    assert done["status"] == "finished"
    assert done["episodes"] == 40
    assert done["slurm"]["state"] == "COMPLETED"
    assert done["slurm"]["exit_code"] == 0
    assert done["slurm"]["name"] == "bait $(touch /tmp/velora-slurm-pwned) `id` red"
    assert not os.path.exists("/tmp/velora-slurm-pwned")
    failed = runs[jobs.failed]
    assert failed["slurm"]["state"] == "FAILED"
    assert failed["slurm"]["exit_code"] == 1
    assert failed["status"] == "ended"  # never "stalled"
    assert 0 < failed["episodes"] < 1000
    cancelled = runs[jobs.cancelled]
    assert cancelled["slurm"]["state"] == "CANCELLED"
    assert cancelled["status"] == "ended"
    assert cancelled["slurm"]["elapsed_seconds"] >= 0

    pending = [i for i in items if (i["slurm"] or {}).get("job_id") == jobs.pending]
    assert pending
    assert pending[0]["id"] is None
    assert pending[0]["db"] is None
    assert pending[0]["slurm"]["state"] == "PENDING"
    assert pending[0]["slurm"]["reason"] == "Dependency"
    running = runs[jobs.timeout]
    assert running["slurm"]["state"] == "RUNNING"
    assert running["slurm"]["time_limit_seconds"] == 60
    assert 0 <= running["slurm"]["time_left_seconds"] <= 60

    # The array writing one file: its run is said to be ambiguous, never given to one task.
    wait_for(lambda: "ambiguous" in json.dumps(listed()), 30, 0.5, "the shared array's run")
    # Each task wrote an experiment of its own into the one file: each run names both tasks.
    shared = [i for i in listed() if i["db"] == str(jobs.work / "shared" / "metrics.db")]
    assert len(shared) == 2
    for run in shared:
        assert run["slurm"]["ambiguous"] is True
        assert set(run["slurm"]["job_ids"]) == {f"{jobs.shared}_0", f"{jobs.shared}_1"}

    table = run_cli("ls", "slurm:")
    assert table.code == 0
    assert f"job {jobs.failed} FAILED exit 1" in table.out
    (pending_line,) = [line for line in table.out.splitlines() if f"job {jobs.pending} " in line]
    # In the SLURM column, the DB column (several databases) after it: "-" for no database.
    assert re.search(rf"job {jobs.pending} PENDING \(Dependency\)\s+-$", pending_line)
    assert pending_line.startswith("pending ")
    assert "stalled" not in table.out


def test_an_array_of_seeds_each_in_its_folder(jobs: Jobs) -> None:
    tasks = [f"{jobs.seeds}_{n}" for n in range(3)]
    wait_for(
        lambda: all(jobs.cluster.job_state(t) == "COMPLETED" for t in tasks),
        60,
        0.5,
        "the array's tasks",
    )
    runs = by_job(listed("--slurm-path", "{workdir}/seed{array_task_id}"))
    for index, task in enumerate(tasks):
        run = runs[task]
        assert run["db"] == str(jobs.work / "sweep" / f"seed{index}" / "metrics.db")
        assert run["slurm"]["array_job_id"] == jobs.seeds
        assert run["slurm"]["array_index"] == str(index)
        assert run["status"] == "finished"
    # Without the template all three are below the array's one WorkDir, at the same time.
    plain = by_job(listed())
    assert all(plain[t]["slurm"].get("ambiguous") for t in tasks)


def test_alerts_say_the_job_that_ended_early_and_the_one_short_of_time(jobs: Jobs) -> None:
    lines = Lines(jobs.follow.stdout)  # type: ignore[arg-type]
    needs = json.loads(lines.first('"time_limit"', timeout=90))
    assert "needs ~" in needs["message"]
    assert "left (1 min limit)" in needs["message"]
    assert needs["severity"] == "warning"
    ended = json.loads(lines.first(f"job {jobs.timeout} TIMEOUT at ", timeout=120))
    assert ended["kind"] == "job_ended"
    assert ended["message"].endswith("/1000 episodes, 1 min limit")
    assert not any('"stalled"' in line for line in lines.drain())
    result = run_cli("alerts", "slurm:", "--json")
    assert result.code == 0, result.err
    said = [json.loads(line) for line in result.out.splitlines()]
    kinds = {(a["kind"], a["message"].split(": ", 1)[1].split(" ")[1]) for a in said}
    assert ("job_ended", jobs.failed) in kinds
    assert ("job_ended", jobs.timeout) in kinds
    assert not any(a["kind"] == "stalled" for a in said)
    check_output(result.out)


def test_without_slurm_one_line_and_exit_2(tmp_path: Path) -> None:
    env = child_env() | {"PATH": str(tmp_path)}  # no squeue on it
    result = subprocess.run(
        python_command("ls", "slurm:"),
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert "no Slurm on this machine" in result.stderr


async def test_the_app_shows_each_jobs_state(jobs: Jobs) -> None:
    ended = {jobs.done: "COMPLETED", jobs.failed: "FAILED", jobs.cancelled: "CANCELLED"}
    wait_for(
        lambda: all(jobs.cluster.job_state(j) == s for j, s in ended.items()),
        120,
        0.5,
        "the jobs to end",
    )
    app = make_app(["slurm:"], Settings(poll=True))
    async with app.run_test(size=(200, 50)):
        await until(lambda: table(app).show_slurm, "the Slurm column", timeout=30)
        # Each job's run is read in its own time (a busy machine: seconds apart).
        shown = (
            f"{jobs.failed} FAILED exit 1",
            f"{jobs.done} COMPLETED",
            f"{jobs.cancelled} CANCELLED",
        )
        await until(lambda: set(shown) <= set(cell_texts(app)), "each job's state", timeout=30)
        texts = cell_texts(app)
        assert not any("stalled" in text for text in texts)
        bar = str(app.screen.query_one(StatusBar).render())
        assert "slurm: " in bar
        assert "stalled" not in bar
