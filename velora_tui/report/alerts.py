"""Alerts worth a notification, found by comparing each experiment with what was seen before:
a run that stalls, a run that reaches its planned episodes, a first inf/NaN or text in its
numbers.

The one place their rules live: the app shows them as notifications (and, with `--notify`, as
desktop notifications through the terminal), `velora-tui alerts` prints them and hands them to a
command. Nothing here imports Textual.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from velora_tui.data.cleaning import clean_text
from velora_tui.data.records import ExperimentSummary, Key, RunStatus, Update, json_time
from velora_tui.data.slurm import Job, limit_text
from velora_tui.data.source_names import source_names
from velora_tui.report.format import duration, episode_count, experiment_label

if TYPE_CHECKING:
    from velora_tui.data.monitor import Monitor

KINDS = ("stalled", "finished", "nonfinite")


@dataclass(frozen=True, slots=True)
class Alert:
    key: Key
    kind: str  # one of KINDS
    severity: str  # "information", "warning" or "error", as Textual's notify takes them
    message: str  # terminal-safe: names cleaned by clean_text


def stalled(summary: ExperimentSummary, now: datetime) -> Alert:
    idle = now - summary.last_activity if summary.last_activity else None
    usual = summary.typical_interval()
    every = f" (usually one every {_short(usual.total_seconds())})" if usual else ""
    message = f"{experiment_label(summary)} stalled: no episode for {duration(idle)}{every}"
    return Alert(summary.key, "stalled", "warning", message)


def finished(summary: ExperimentSummary) -> Alert:
    """What the run reached (its last episode number: ExperimentSummary.reached), and its
    rows where they are not as many (a run numbered again from 1, rows lost)."""
    reached, planned = summary.reached, summary.n_episodes
    if summary.episodes == reached:
        text = f"{reached} of {planned} planned episodes"
    else:
        recorded = episode_count(summary, planned=False)
        text = f"reached episode {reached} of {planned} planned ({recorded} episodes recorded)"
    return Alert(
        summary.key, "finished", "information", f"{experiment_label(summary)} finished: {text}"
    )


def nonfinite(summary: ExperimentSummary) -> Alert:
    message = (
        f"{experiment_label(summary)}: inf, NaN or text in a reward, loss or moving average/std "
        f"({summary.nonfinite} episodes so far)"
    )
    return Alert(summary.key, "nonfinite", "error", message)


def current_alerts(summaries: Iterable[ExperimentSummary], now: datetime) -> list[Alert]:
    """What holds now, by the same rules: every stalled and finished run, and every run with
    inf/NaN or text in its numbers (exact once its rows are added up)."""
    alerts: list[Alert] = []
    for summary in summaries:
        status = summary.status(now)
        if status is RunStatus.STALLED:
            alerts.append(stalled(summary, now))
        elif status is RunStatus.FINISHED:
            alerts.append(finished(summary))
        if summary.nonfinite:
            alerts.append(nonfinite(summary))
    alerts.extend(SlurmAlerts().observe(summaries, now, first_look=False))
    return alerts


def alert_json(alert: Alert, summary: ExperimentSummary | None, now: datetime) -> dict[str, Any]:
    """An alert as a JSON object (`velora-tui alerts --json`, and a command's stdin): names
    cleaned of control characters, as everything from a database that is shown."""
    data: dict[str, Any] = {
        "time": json_time(now),
        "kind": alert.kind,
        "severity": alert.severity,
        "message": alert.message,
        "db": source_names.name(alert.key[0]),
        "id": alert.key[1],
    }
    if summary is not None:
        data |= {
            "agent": clean_text(summary.agent),
            "env": clean_text(summary.env),
            "status": str(summary.status(now)),
            "episodes": summary.episodes,
            "n_episodes": summary.n_episodes,
            "last_activity": json_time(summary.last_activity),
            "nonfinite_episodes": summary.nonfinite,
        }
    return data


class AlertTracker:
    """Raises each alert once per experiment; the first look only records what is there."""

    def __init__(self) -> None:
        self.status: dict[Key, RunStatus] = {}
        self.nonfinite: dict[Key, int] = {}
        self.slurm = SlurmAlerts()

    def running(self) -> set[Key]:
        """Experiments last seen running: the only ones a clock tick can change."""
        return {key for key, status in self.status.items() if status is RunStatus.RUNNING}

    def after(
        self, monitor: Monitor, updates: list[Update], heartbeat: bool, now: datetime
    ) -> list[Alert]:
        """The alerts after a read (or a clock tick): only the experiments it touched, and on a
        tick the running ones, are looked at; everything on the first look and after a reset."""
        if any(u.reset for u in updates) or not self.status:
            summaries = monitor.summaries()
        else:
            keys = {(u.db, exp) for u in updates for exp in u.experiments}
            if heartbeat:
                keys |= self.running()
            found = (monitor.summary(key) for key in keys)
            summaries = [s for s in found if s is not None]
        return self.observe(summaries, now)

    def added_up(self, monitor: Monitor, updates: list[Update]) -> None:
        """What a scan found in existing rows (inf/NaN counts) is history, not news: recorded
        without an alert."""
        for update in updates:
            for exp_id in update.experiments:
                summary = monitor.summary((update.db, exp_id))
                if summary is not None:
                    self.nonfinite[summary.key] = summary.nonfinite

    def observe(self, summaries: Iterable[ExperimentSummary], now: datetime) -> list[Alert]:
        alerts: list[Alert] = []
        summaries = list(summaries)
        for summary in summaries:
            key = summary.key
            status = summary.status(now)
            before = self.status.get(key)
            self.status[key] = status
            bad_before = self.nonfinite.get(key)
            self.nonfinite[key] = summary.nonfinite
            if before is None:
                continue
            # Only live transitions: a run read while it catches up on old rows (its history
            # being written, or read for the first time) is not news.
            if status is RunStatus.STALLED and before is RunStatus.RUNNING:
                alerts.append(stalled(summary, now))
            elif status is RunStatus.FINISHED and (
                before is RunStatus.RUNNING or (before is RunStatus.EMPTY and _recent(summary, now))
            ):
                alerts.append(finished(summary))
            if summary.nonfinite and not bad_before:
                alerts.append(nonfinite(summary))
        return alerts + self.slurm.observe(summaries, now)


def _recent(summary: ExperimentSummary, now: datetime) -> bool:
    return summary.last_activity is not None and now - summary.last_activity < summary.stall_after()


def _short(seconds: float) -> str:
    return f"{seconds:.2f} s" if seconds < 10 else duration(timedelta(seconds=seconds))


# -- Slurm jobs ------------------------------------------------------------------------------
# A run tied to its job (data/slurm_monitor.py: ExperimentSummary.job; an ambiguous tie never
# alerts): the job ended other than COMPLETED before the run's planned episodes, and a running
# job whose ETA passes its time limit (said once per job, as soon as the run's pace is known:
# early enough to act, on the first look too).

SLURM_KINDS = ("job_ended", "time_limit")
# The ETA must pass the time left by this much before it is said (a pace that wavers around
# the limit says it once, not never).
LIMIT_MARGIN = 1.05


def job_ended(summary: ExperimentSummary, job: Job) -> Alert:
    """`#3 NeuroFlow · CartPole-v1: job 12 TIMEOUT at 612/1000 episodes, 2 h 00 min limit`."""
    planned = f"/{summary.n_episodes}" if summary.n_episodes else ""
    text = f"job {clean_text(job.job_id, 40)} {job.state} at {summary.reached}{planned} episodes"
    if job.state == "TIMEOUT" and job.time_limit is not None:
        text += f", {limit_text(job.time_limit)} limit"
    elif job.exit_code:
        text += f", exit {job.exit_code}"
    elif job.signal:
        text += f", signal {job.signal}"
    return Alert(summary.key, "job_ended", "error", f"{experiment_label(summary)}: {text}")


def time_limit(summary: ExperimentSummary, job: Job, eta: timedelta, left: timedelta) -> Alert:
    """`...: job 12 needs ~40 min more, has 25 min left (2 h 00 min limit)`."""
    text = (
        f"job {clean_text(job.job_id, 40)} needs ~{limit_text(eta)} more, has"
        f" {limit_text(left)} left ({limit_text(job.time_limit)} limit)"
    )
    return Alert(summary.key, "time_limit", "warning", f"{experiment_label(summary)}: {text}")


class SlurmAlerts:
    """Each job's alerts once: (experiment, job, kind) said."""

    def __init__(self) -> None:
        self.said: set[tuple[Key, str, str]] = set()
        self.seen: set[Key] = set()

    def observe(
        self, summaries: Iterable[ExperimentSummary], now: datetime, first_look: bool | None = None
    ) -> list[Alert]:
        """`first_look`: an ended job seen at the first look of a run is history (recorded,
        not said) unless False (`alerts` without -f: what holds now)."""
        alerts: list[Alert] = []
        for summary in summaries:
            tied = summary.job
            first = summary.key not in self.seen if first_look is None else first_look
            self.seen.add(summary.key)
            job = tied.job if tied is not None else None
            if job is None:
                continue
            if job.ended:
                if job.state == "COMPLETED" or summary.finished:
                    continue
                if self._once(summary.key, job, "job_ended") and not first:
                    alerts.append(job_ended(summary, job))
                continue
            left = job.time_left(now)
            eta = summary.eta() if job.running else None
            if left is None or eta is None or len(summary.recent) < 6:
                continue
            if eta.total_seconds() > left.total_seconds() * LIMIT_MARGIN and self._once(
                summary.key, job, "time_limit"
            ):
                alerts.append(time_limit(summary, job, eta, left))
        return alerts

    def _once(self, key: Key, job: Job, kind: str) -> bool:
        mark = (key, job.job_id, kind)
        if mark in self.said:
            return False
        self.said.add(mark)
        return True
