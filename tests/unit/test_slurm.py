"""Slurm's output parsed (recorded and synthetic, hostile ones too), the client's asking (at most
once an interval, however many ask; a silent squeue a state), and runs tied to jobs."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from velora_tui.data.records import ExperimentSummary, RunStatus
from velora_tui.data.slurm import (
    SEPARATOR,
    Job,
    JobTie,
    PathTemplate,
    SlurmSourceError,
    Snapshot,
    clean_state,
    describe,
    describe_tie,
    parse_duration,
    parse_sacct_json,
    parse_sacct_text,
    parse_scontrol,
    parse_slurm_source,
    parse_squeue_json,
    parse_squeue_text,
    tie,
)
from velora_tui.data.slurm_client import Reply, SlurmClient, SlurmState

T0 = 1796497282  # 2026-12-05, as the test cluster gave it
HOSTILE = "run $(rm -rf ~) `id` \x1b[31mred\x1b[0m [bold]x[/] \u202e\nnext"


def squeue_job(**fields: Any) -> dict[str, Any]:
    """One job of `squeue --json` as Slurm 22.05 (openapi v0.0.38) writes it."""
    job = {
        "job_id": 7,
        "array_job_id": 0,
        "array_task_id": None,
        "array_task_string": "",
        "name": "train",
        "job_state": "RUNNING",
        "state_reason": "None",
        "exit_code": 0,
        "current_working_directory": "/work/a",
        "submit_time": T0,
        "start_time": T0 + 2,
        "end_time": T0 + 3602,
        "time_limit": 60,
    }
    return job | fields


def squeue(*jobs: dict[str, Any]) -> str:
    return json.dumps({"meta": {}, "errors": [], "jobs": list(jobs)})


def at(offset: float) -> datetime:
    return datetime.fromtimestamp(T0 + offset)


def test_squeue_json_of_slurm_22_05() -> None:
    jobs = parse_squeue_json(
        squeue(
            squeue_job(),
            squeue_job(job_id=8, job_state="FAILED", state_reason="NonZeroExitCode", exit_code=768),
            squeue_job(job_id=9, job_state="PENDING", state_reason="Dependency", start_time=0),
            squeue_job(job_id=10, array_job_id=10, array_task_string="0-2", job_state="PENDING"),
            squeue_job(job_id=12, array_job_id=10, array_task_id=1),
            squeue_job(job_id=13, job_state="CANCELLED", exit_code=15),  # killed by SIGTERM
            squeue_job(job_id=14, time_limit=None),
        )
    )
    assert [j.job_id for j in jobs] == ["7", "8", "9", "10_[0-2]", "10_1", "13", "14"]
    running, failed, pending, array, task, cancelled, unlimited = jobs
    assert running.running
    assert running.time_limit == timedelta(hours=1)
    assert running.start_time == at(2)
    assert running.work_dir == "/work/a"
    assert running.time_left(at(2 + 600)) == timedelta(minutes=50)
    assert failed.ended
    assert failed.exit_code == 3
    assert failed.reason == "NonZeroExitCode"
    assert pending.pending
    assert pending.start_time is None
    assert pending.reason == "Dependency"
    assert array.array_job_id == "10"
    assert array.array_task == "0-2"
    assert array.pending
    assert task.array_task == "1"
    assert task.array_task_single
    assert cancelled.signal == 15
    assert cancelled.exit_code is None
    assert unlimited.time_limit is None
    assert unlimited.time_left(at(5)) is None


def test_squeue_json_of_newer_slurm() -> None:
    """24.x: states are lists, numbers are {set, infinite, number}, exit codes objects."""
    number = {"set": True, "infinite": False, "number": T0}
    job = squeue_job(
        job_state=["TIMEOUT"],
        start_time=number,
        end_time={"set": True, "infinite": False, "number": T0 + 7200},
        time_limit={"set": True, "infinite": False, "number": 120},
        exit_code={
            "status": ["SIGNALED"],
            "return_code": {"set": True, "number": 0},
            "signal": {"id": {"set": True, "number": 15}, "name": "TERM"},
        },
    )
    infinite = squeue_job(job_id=8, time_limit={"set": True, "infinite": True, "number": 0})
    first, second = parse_squeue_json(squeue(job, infinite))
    assert first.state == "TIMEOUT"
    assert first.ended
    assert first.signal == 15
    assert first.elapsed(at(99999)) == timedelta(hours=2)
    assert describe(first, at(99999)) == "TIMEOUT after 2 h 00 min"
    assert second.time_limit is None


@pytest.mark.parametrize(
    "text",
    ["", "null", "[]", "{}", '{"jobs": 3}', "not json", '{"jobs": [1, "x", null]}'],
)
def test_squeue_json_that_is_not(text: str) -> None:
    # No jobs, or a ValueError (the client then falls back to the format string).
    with contextlib.suppress(ValueError):
        assert parse_squeue_json(text) == []


def test_hostile_fields_never_break_and_are_shown_as_plain_text() -> None:
    (job,) = parse_squeue_json(
        squeue(
            squeue_job(
                name=HOSTILE,
                job_state="RUNNING\x1b[2J",
                state_reason=HOSTILE,
                current_working_directory="relative/$(x)",
                start_time="yesterday",
                end_time=1e300,
                time_limit=-5,
                exit_code="3",
            ),
            squeue_job(job_id="8"),  # an id that is no number: left out
            squeue_job(job_id=None),
        )
    )
    assert job.state == "RUNNING"
    assert job.work_dir is None  # a relative path is never used as a folder
    assert job.start_time is None
    assert job.end_time is None
    assert job.time_limit is None
    data = json.dumps(job.to_json(at(0)))
    assert "\x1b" not in data
    assert "\\u001b" not in data
    assert "\\n" not in data
    assert "$(rm -rf ~)" in job.to_json(at(0))["name"]  # the text kept, as text
    assert clean_state(["OUT_OF_MEMORY"]) == "OUT_OF_MEMORY"
    assert clean_state("CANCELLED by 0") == "CANCELLED"
    assert clean_state("lowercase") == clean_state(5) == "UNKNOWN"


def test_squeue_format_string() -> None:
    def line(*fields: str) -> str:
        return SEPARATOR.join(fields)

    text = "\n".join(
        [
            line(
                "7",
                "7",
                "N/A",
                "RUNNING",
                "None",
                "2026-12-05T19:01:22",
                "2026-12-05T19:01:24",
                "2026-12-05T20:01:24",
                "1:00:00",
                "10:00",
                "/work/a",
                f"name {SEPARATOR} with the separator",
            ),
            line(
                "5_[0-2]",
                "5",
                "0-2",
                "PENDING",
                "Resources",
                "2026-12-05T19:01:22",
                "N/A",
                "N/A",
                "UNLIMITED",
                "0:00",
                "/work/b",
                "sweep",
            ),
            line(
                "5_1",
                "5",
                "1",
                "FAILED",
                "NonZeroExitCode",
                "N/A",
                "N/A",
                "N/A",
                "1-02:00:00",
                "0:00",
                "/work/b",
                "sweep",
            ),
            "garbage line",
            "",
        ]
    )
    running, pending, task = parse_squeue_text(text)
    assert running.name == f"name {SEPARATOR} with the separator"
    assert running.time_limit == timedelta(hours=1)
    assert running.elapsed_seen == timedelta(minutes=10)
    assert pending.job_id == "5_[0-2]"
    assert pending.array_task == "0-2"
    assert pending.start_time is None
    assert task.array_task == "1"
    assert task.time_limit == timedelta(days=1, hours=2)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("5:00", 300),
        ("1:00:00", 3600),
        ("1-02:03:04", 93784),
        ("60", 3600),
        ("2-04:30", 189000),
        ("UNLIMITED", None),
        ("NOT_SET", None),
        ("N/A", None),
        ("", None),
        ("9" * 40, None),
    ],
)
def test_durations(text: str, seconds: int | None) -> None:
    found = parse_duration(text)
    assert (None if found is None else found.total_seconds()) == seconds


def test_scontrol_oneliner() -> None:
    text = (
        "JobId=3 JobName=my job Name=x $(y) UserId=root(0) JobState=FAILED "
        "Reason=NonZeroExitCode Dependency=(null) ExitCode=3:0 RunTime=00:00:05 "
        "TimeLimit=02:00:00 SubmitTime=2026-12-05T19:01:22 StartTime=2026-12-05T19:01:26 "
        "EndTime=2026-12-05T19:01:31 WorkDir=/tmp/with space StdOut=/tmp/x.out\n"
        "JobId=4 ArrayJobId=4 ArrayTaskId=2 JobState=CANCELLED ExitCode=0:15 "
        "StartTime=2026-12-05T19:01:26 EndTime=Unknown WorkDir=/w\n"
        "no fields here\n"
    )
    failed, task = parse_scontrol(text)
    assert failed.job_id == "3"
    assert failed.state == "FAILED"
    assert failed.exit_code == 3
    assert failed.name == "my job"  # cut at the next ` Key=`: never a wrong field
    assert failed.work_dir == "/tmp/with space"
    assert failed.time_limit == timedelta(hours=2)
    assert failed.elapsed(at(10**6)) == timedelta(seconds=5)
    assert task.job_id == "4_2"
    assert task.signal == 15
    assert task.end_time is None


def test_sacct() -> None:
    (job, task) = parse_sacct_text(
        "12|TIMEOUT|0:0|2026-12-05T19:00:00|2026-12-05T19:00:01|2026-12-05T21:00:01|02:00:00|"
        "/w|train|x\n13_2|CANCELLED by 0|0:15|N/A|N/A|N/A|UNLIMITED|/w|a\nshort|line\n"
    )
    assert job.state == "TIMEOUT"
    assert job.name == "train|x"
    assert job.time_limit == timedelta(hours=2)
    assert task.array_job_id == "13"
    assert task.array_task == "2"
    assert task.state == "CANCELLED"
    (found,) = parse_sacct_json(
        json.dumps(
            {
                "jobs": [
                    {
                        "job_id": 21,
                        "name": "n",
                        "state": {"current": ["OUT_OF_MEMORY"], "reason": "None"},
                        "exit_code": {"return_code": {"set": True, "number": 0}},
                        "time": {"start": T0, "end": T0 + 60, "limit": {"number": 30}},
                        "working_directory": "/w",
                        "array": {"job_id": 0, "task_id": {"set": False}},
                    },
                    "junk",
                ]
            }
        )
    )
    assert found.state == "OUT_OF_MEMORY"
    assert found.ended
    assert found.time_limit == timedelta(minutes=30)


def test_sources_and_templates() -> None:
    assert parse_slurm_source("slurm:") is not None
    found = parse_slurm_source("slurm:login1")
    assert found is not None
    assert found.host == "login1"
    assert found.label == "slurm:login1"
    assert parse_slurm_source("slurm:runs/x") is None  # a host named slurm, its path
    assert parse_slurm_source("./slurm:") is None
    for refused in ("slurm:-oProxyCommand=x", "slurm:a b", "slurm:a\x1b"):
        with pytest.raises(SlurmSourceError):
            parse_slurm_source(refused)
    job = Job("5_2", "RUNNING", name="../x", array_job_id="5", array_task="2", work_dir="/w")
    assert PathTemplate().folder(job) == "/w"
    assert PathTemplate("{workdir}/seed{array_task_id}").folder(job) == "/w/seed2"
    assert PathTemplate("/runs/{job_id}").folder(job) == "/runs/5_2"
    assert PathTemplate("/runs/{name}").folder(job) is None  # a name that leaves the folder
    assert PathTemplate("runs/{job_id}").folder(job) is None  # relative to nothing known
    plain = Job("6", "RUNNING", work_dir="/w")
    assert PathTemplate("{workdir}/seed{array_task_id}").folder(plain) is None
    for bad in ("{workdir.__class__}", "{0}", "{}", "{workdir!r}", "{workdir:>40}", "{env}", "{"):
        with pytest.raises(SlurmSourceError):
            PathTemplate(bad)


def summary_at(db: str, created: datetime) -> ExperimentSummary:
    return ExperimentSummary(Path(db), 1, "A", "E", created, n_episodes=1000)


def test_runs_tied_by_folder_and_time_and_ambiguity_said() -> None:
    now = at(10_000)
    first = Job("1", "COMPLETED", work_dir="/w/a", start_time=at(0), end_time=at(100))
    later = Job("2", "RUNNING", work_dir="/w/a", start_time=at(200))
    elsewhere = Job("3", "RUNNING", work_dir="/w/b", start_time=at(0))
    task1 = Job("4_1", "RUNNING", work_dir="/w/c", start_time=at(0), array_task="1")
    task2 = Job("4_2", "RUNNING", work_dir="/w/c", start_time=at(0), array_task="2")
    jobs = [first, later, elsewhere, task1, task2]
    folders = {job.job_id: [Path(job.work_dir or "/")] for job in jobs}

    def tied(db: str, created: float) -> JobTie | None:
        return tie(Path(db), at(created), folders, jobs, now)

    assert tied("/w/a/metrics.db", 50) == JobTie((first,))
    assert tied("/w/a/runs/deep/metrics.db", 300) == JobTie((later,))
    assert tied("/w/a/metrics.db", 150) is None  # between the two: neither
    assert tied("/elsewhere/metrics.db", 50) is None
    both = tied("/w/c/metrics.db", 10)
    assert both is not None
    assert both.ambiguous
    assert both.job is None
    assert describe_tie(both, now).startswith("ambiguous: jobs 4_1, 4_2")
    assert both.to_json(now) == {
        "ambiguous": True,
        "job_ids": ["4_1", "4_2"],
        "states": ["RUNNING"],
    }


def test_a_run_whose_job_ended_is_never_stalled() -> None:
    summary = summary_at("/w/a/metrics.db", at(0))
    summary.episodes, summary.last_episode_num, summary.last_activity = 612, 612, at(10)
    assert summary.status(at(100_000)) is RunStatus.STALLED
    summary.job = JobTie((Job("1", "TIMEOUT", start_time=at(0), end_time=at(7200)),))
    assert summary.status(at(100_000)) is RunStatus.ENDED
    summary.job = JobTie((Job("1", "RUNNING", start_time=at(0)),))
    assert summary.status(at(100_000)) is RunStatus.STALLED  # running and silent: a stall


@pytest.mark.parametrize(
    ("job", "said"),
    [
        (Job("1", "PENDING", reason="Resources"), "PENDING (Resources)"),
        (Job("1", "PENDING", reason="None"), "PENDING"),
        (
            Job("1", "RUNNING", start_time=at(0), time_limit=timedelta(hours=2)),
            "RUNNING 1 h 50 min left of 2 h 00 min",
        ),
        (Job("1", "RUNNING", start_time=at(0)), "RUNNING 10 min, no limit"),
        (Job("1", "FAILED", exit_code=1), "FAILED exit 1"),
        (Job("1", "FAILED", signal=9), "FAILED signal 9"),
        (Job("1", "TIMEOUT", time_limit=timedelta(minutes=30)), "TIMEOUT after 30 min"),
        (Job("1", "OUT_OF_MEMORY"), "OUT_OF_MEMORY"),
        (Job("1", "NODE_FAIL"), "NODE_FAIL"),
        (Job("1", "PREEMPTED"), "PREEMPTED"),
        (Job("1", "CANCELLED"), "CANCELLED"),
        (Job("1", "PENDING", reason=HOSTILE), None),
    ],
)
def test_what_the_list_says(job: Job, said: str | None) -> None:
    text = describe(job, at(600))
    if said is not None:
        assert text == said
    assert "\x1b" not in text
    assert "\n" not in text
    assert "\u202e" not in text


def test_ended_jobs_stay_and_vanished_running_ones_are_gone() -> None:
    before = Snapshot().merged(
        [Job("1", "COMPLETED"), Job("2", "RUNNING"), Job("3_[0-1]", "PENDING"), Job("4", "PENDING")]
    )
    after = before.merged([Job("3_0", "RUNNING")], final=[Job("4", "CANCELLED")])
    states = {job_id: job.state for job_id, job in after.jobs.items()}
    assert states == {"3_0": "RUNNING", "4": "CANCELLED", "1": "COMPLETED", "2": "GONE"}
    assert after.jobs["2"].ended


class FakeSlurm:
    """Slurm's commands, counted; `hang` makes squeue not answer in time."""

    def __init__(self, jobs: Sequence[dict[str, Any]] = (), json_ok: bool = True) -> None:
        self.jobs = list(jobs)
        self.json_ok = json_ok
        self.calls: list[list[str]] = []
        self.hang = False
        self.lock = threading.Lock()

    def __call__(self, argv: Sequence[str], timeout: float) -> Reply:
        with self.lock:
            self.calls.append(list(argv))
        if self.hang:
            return Reply(None, "", "")
        if argv[0] == "squeue" and "--json" in argv:
            if not self.json_ok:
                return Reply(1, "", "squeue: unrecognized option '--json'")
            return Reply(0, squeue(*self.jobs), "")
        if argv[0] == "squeue":
            lines = [
                SEPARATOR.join(
                    [
                        str(j["job_id"]),
                        str(j["job_id"]),
                        "N/A",
                        j["job_state"],
                        "None",
                        "N/A",
                        "2026-12-05T19:01:24",
                        "N/A",
                        "1:00:00",
                        "0:10",
                        j["current_working_directory"],
                        j["name"],
                    ]
                )
                for j in self.jobs
            ]
            return Reply(0, "\n".join(lines), "")
        if argv[0] == "sacct":
            return Reply(1, "", "Slurm accounting storage is disabled")
        if argv[0] == "scontrol":
            return Reply(0, "JobId=7 JobState=TIMEOUT ExitCode=0:0 WorkDir=/work/a\n", "")
        return Reply(127, "", "not found")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_asked_at_most_once_an_interval_however_many_ask() -> None:
    slurm = FakeSlurm([squeue_job(job_id=n) for n in range(50)])
    clock = Clock()
    client = SlurmClient(runner=slurm, clock=clock, interval=5.0)
    client.refresh()
    assert len(client.jobs()) == 50
    assert client.state is SlurmState.OK
    for _ in range(200):  # screens, sources, commands asking in the same seconds
        client.jobs()
        client.refresh()
        client.poll()
    clock.now = 4.9
    client.jobs()
    client.refresh()
    assert len(slurm.calls) == 1
    clock.now = 5.0
    client.refresh()
    assert len(slurm.calls) == 2
    assert slurm.calls[0] == ["squeue", "--me", "--json"]


def test_a_silent_squeue_is_a_state_and_what_was_known_stays() -> None:
    slurm = FakeSlurm([squeue_job()])
    clock = Clock()
    client = SlurmClient(runner=slurm, clock=clock, timeout=10.0)
    client.refresh()
    slurm.hang = True
    clock.now = 10
    client.refresh()
    assert client.describe() == "not responding (squeue gave no answer in 10 s)"
    assert [j.job_id for j in client.jobs()] == ["7"]
    slurm.hang = False
    clock.now = 20
    client.refresh()
    assert client.describe() == "1 jobs: 1 running"


def test_without_json_the_format_string_and_scontrol_for_vanished_jobs() -> None:
    slurm = FakeSlurm([squeue_job(name=HOSTILE.replace("\n", " "))], json_ok=False)
    clock = Clock()
    client = SlurmClient(runner=slurm, clock=clock)
    client.refresh()
    assert client.json is False
    (job,) = client.jobs()
    assert job.state == "RUNNING"
    assert job.work_dir == "/work/a"
    slurm.jobs = []  # it left the queue
    clock.now = 10
    client.refresh()
    (job,) = client.jobs()
    assert job.state == "TIMEOUT"  # scontrol knew (no accounting here)
    commands = [call[0] for call in slurm.calls]
    assert commands == ["squeue", "squeue", "squeue", "sacct", "scontrol"]
    clock.now = 20
    client.refresh()
    assert [call[0] for call in slurm.calls[5:]] == ["squeue"]  # it ended: not asked again
    assert client.accounting is False


def test_through_ssh_each_word_is_quoted_for_the_remote_shell() -> None:
    seen: list[list[str]] = []

    def runner(argv: Sequence[str], timeout: float) -> Reply:
        seen.append(list(argv))
        return Reply(0, squeue(), "")

    SlurmClient(["ssh", "--", "login1"], runner=runner).refresh()
    assert seen == [["ssh", "--", "login1", "squeue --me --json"]]


def test_through_ssh_the_ready_line_is_taken_off_and_its_absence_is_a_failure() -> None:
    replies = [
        Reply(0, "velora-tui-ready\n" + squeue(squeue_job()), ""),
        Reply(255, "", "ssh: connect to host login1 port 22: Connection refused\n"),
    ]
    client = SlurmClient(
        through=lambda words: ["ssh", "--", "login1", " ".join(words)],
        ready="velora-tui-ready",
        runner=lambda argv, timeout: replies.pop(0),
        clock=(clock := Clock()),
    )
    client.refresh()
    assert list(client.snapshot.jobs) == ["7"]
    clock.now = 10
    client.refresh()
    assert client.state is SlurmState.FAILING
    assert (
        client.message
        == "squeue exited 255: ssh: connect to host login1 port 22: Connection refused"
    )
    assert list(client.snapshot.jobs) == ["7"]  # what was known stays
