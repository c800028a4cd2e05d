"""The app on a `slurm:` source whose Slurm is given by the test (data/slurm_client's runner):
the list's Slurm column and the header say each run's job; a squeue that does not answer is
"slurm: not responding" on the status line while the app stays responsive."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from tests.support.app import SIZE, cell_texts, settle, table
from tests.support.databases import RunSpec, build_velora_db
from tests.support.waiting import until
from velora_tui.data.slurm_client import Reply, SlurmClient
from velora_tui.data.slurm_monitor import open_slurm
from velora_tui.tui.app import Settings, VeloraApp
from velora_tui.tui.screens.help import HelpScreen
from velora_tui.tui.widgets.experiment_header import ExperimentHeader
from velora_tui.tui.widgets.status_bar import StatusBar


def squeue_reply(jobs: list[dict[str, object]]) -> Reply:
    return Reply(0, json.dumps({"jobs": jobs}), "")


def job(
    job_id: int, folder: Path, state: str, start: float, end: float | None = None, **more: object
) -> dict[str, object]:
    return {
        "job_id": job_id,
        "job_state": state,
        "name": "train \x1b[31m[bold]x[/]",
        "state_reason": more.pop("reason", "None"),
        "current_working_directory": str(folder),
        "start_time": int(start),
        "end_time": int(start + 7200 if end is None else end),
        "time_limit": 120,
        **more,
    }


async def test_the_list_and_the_header_say_each_runs_job(tmp_path: Path) -> None:
    created = datetime.now().replace(microsecond=0)
    start = created.timestamp() - 60
    folders = [tmp_path / name for name in ("running", "failed")]
    for folder in folders:
        folder.mkdir()
        build_velora_db(folder / "metrics.db", [RunSpec(planned=1000, write=40)])
    jobs = [
        job(11, folders[0], "RUNNING", start),
        job(12, folders[1], "FAILED", start, exit_code=256, end=created.timestamp() + 10),
        job(13, tmp_path, "PENDING", 0, reason="Priority"),
    ]
    client = SlurmClient(runner=lambda argv, timeout: squeue_reply(jobs))
    monitor = open_slurm([], client=client)
    app = VeloraApp(monitor, Settings(live=False))
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(app)
        texts = cell_texts(app)
        assert any(t.startswith("11 RUNNING") and "left of 2 h 00 min" in t for t in texts)
        assert "12 FAILED exit 1" in texts
        assert table(app).show_slurm
        bar = str(app.screen.query_one(StatusBar).render())
        assert "slurm: 3 jobs: 1 running, 1 pending (job 13: Priority), 1 ended" in bar
        await pilot.press("enter")
        await settle(app)
        header = app.screen.query_one(ExperimentHeader)
        stats = str(header.query_one("#exp-stats").render())
        title = str(header.query_one("#exp-title").render())
        assert "job 1" in stats
        assert "\x1b" not in stats + title


async def test_a_silent_squeue_is_a_state_and_the_app_answers(tmp_path: Path) -> None:
    release = threading.Event()
    asked: list[Sequence[str]] = []

    def silent(argv: Sequence[str], timeout: float) -> Reply:
        asked.append(argv)
        release.wait(timeout)  # as subprocess.run's timeout would: then it is killed
        return Reply(None, "", "")

    client = SlurmClient(runner=silent, timeout=0.5, interval=0.2)
    monitor = open_slurm([], client=client, wait=False)
    app = VeloraApp(monitor, Settings(poll=True))
    try:
        async with app.run_test(size=SIZE) as pilot:
            bar = app.screen.query_one(StatusBar)
            await until(lambda: "slurm: not responding" in str(bar.render()), timeout=15)
            assert "squeue gave no answer in 0.5 s" in str(bar.render())
            await pilot.press("question_mark")
            await until(lambda: isinstance(app.screen, HelpScreen), timeout=5)
    finally:
        release.set()
    assert asked


async def test_new_jobs_appear_while_the_app_runs(tmp_path: Path) -> None:
    start = datetime.now().timestamp() - 60
    jobs: list[dict[str, object]] = []
    client = SlurmClient(runner=lambda argv, timeout: squeue_reply(list(jobs)), interval=0.2)
    app = VeloraApp(open_slurm([], client=client, wait=False), Settings(poll=True))
    async with app.run_test(size=(160, 40)):
        bar = app.screen.query_one(StatusBar)
        await until(lambda: "slurm: no jobs" in str(bar.render()), timeout=15)
        for number in (21, 22):
            folder = tmp_path / f"job-{number}"
            build_velora_db(folder / "metrics.db", [RunSpec(planned=1000, write=10)])
            jobs.append(job(number, folder, "RUNNING", start))
        await until(lambda: table(app).row_count == 2, "the new jobs' runs", timeout=20)
        await until(lambda: any(t.startswith("22 RUNNING") for t in cell_texts(app)), timeout=10)
