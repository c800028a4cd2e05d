"""The Slurm alerts: a job that ended early (said once, never on the first look of a `-f`), a
running job whose ETA passes its limit (once, on the first look too: it is still time to act),
none for an ambiguous tie or a job that completed."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from velora_tui.data.records import EpisodeRow, ExperimentSummary
from velora_tui.data.slurm import Job, JobTie
from velora_tui.report.alerts import AlertTracker, current_alerts

START = datetime(2026, 12, 5, 12, 0, 0)


def run(episodes: int, planned: int = 1000, every: float = 10.0) -> ExperimentSummary:
    summary = ExperimentSummary(
        Path("/w/metrics.db"), 3, "NeuroFlow", "CartPole-v1", START, planned
    )
    for num in range(1, episodes + 1):
        at = START + timedelta(seconds=num * every)
        summary.absorb(EpisodeRow(num, 3, num, 1.0, 10, 1.0, 0.1, -0.5, 0.5, -0.01, at))
    return summary


def with_job(summary: ExperimentSummary, *jobs: Job) -> ExperimentSummary:
    summary.job = JobTie(jobs)
    return summary


def test_a_job_that_ended_early_once_and_never_at_the_first_look() -> None:
    summary = with_job(
        run(612), Job("12", "RUNNING", start_time=START, time_limit=timedelta(hours=4))
    )
    tracker = AlertTracker()
    now = START + timedelta(seconds=6121)
    assert tracker.observe([summary], now) == []
    with_job(
        summary, Job("12", "TIMEOUT", start_time=START, end_time=now, time_limit=timedelta(hours=2))
    )
    (alert,) = tracker.observe([summary], now + timedelta(minutes=5))
    assert alert.kind == "job_ended"
    assert alert.message == (
        "#3 NeuroFlow · CartPole-v1: job 12 TIMEOUT at 612/1000 episodes, 2 h 00 min limit"
    )
    assert tracker.observe([summary], now + timedelta(hours=5)) == []  # once; never "stalled"
    late = AlertTracker()
    assert late.observe([summary], now) == []  # history at the first look


def test_failed_with_its_exit_code_and_completed_not_at_all() -> None:
    failed = with_job(run(40), Job("8", "FAILED", exit_code=1, start_time=START, end_time=START))
    completed = with_job(run(40), Job("9", "COMPLETED", start_time=START, end_time=START))
    now = START + timedelta(hours=1)
    messages = [a.message for a in current_alerts([failed, completed], now)]
    assert messages == ["#3 NeuroFlow · CartPole-v1: job 8 FAILED at 40/1000 episodes, exit 1"]
    as_they_come = current_alerts(iter([failed, completed]), now)  # any iterable, looked at once
    assert [a.message for a in as_they_come] == messages


def test_an_eta_past_the_limit_once_early_enough_to_act() -> None:
    summary = run(100, planned=1000, every=3.0)  # 900 episodes left at 3 s: 45 min
    now = START + timedelta(seconds=301)
    job = Job("12", "RUNNING", start_time=START, time_limit=timedelta(minutes=30))
    with_job(summary, job)
    tracker = AlertTracker()
    (alert,) = tracker.observe([summary], now)
    assert alert.kind == "time_limit"
    assert alert.severity == "warning"
    assert alert.message.endswith("job 12 needs ~45 min more, has 24 min left (30 min limit)")
    assert tracker.observe([summary], now + timedelta(seconds=10)) == []
    roomy = with_job(
        run(100, every=3.0), Job("13", "RUNNING", start_time=START, time_limit=timedelta(hours=2))
    )
    assert AlertTracker().observe([roomy], now) == []


def test_an_ambiguous_tie_says_nothing() -> None:
    both = (
        Job("4_1", "FAILED", exit_code=1, start_time=START),
        Job("4_2", "FAILED", start_time=START),
    )
    summary = with_job(run(40), *both)
    assert current_alerts([summary], START + timedelta(hours=1)) == []
