"""Alerts worth a notification, found by comparing each experiment with what was seen before:
a run that stalls, a run that reaches its planned episodes, a first inf/NaN in its numbers."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from velora_tui.data.records import ExperimentSummary, Key, RunStatus
from velora_tui.data.values import clean_text
from velora_tui.format import duration


@dataclass(frozen=True, slots=True)
class Alert:
    key: Key
    severity: str  # "information", "warning" or "error", as Textual's notify takes them
    message: str


def label(summary: ExperimentSummary) -> str:
    return f"#{summary.id} {clean_text(summary.agent, 40)} · {clean_text(summary.env, 40)}"


class AlertTracker:
    """Raises each alert once per experiment; the first look only records what is there."""

    def __init__(self) -> None:
        self.status: dict[Key, RunStatus] = {}
        self.nonfinite: dict[Key, int] = {}

    def running(self) -> set[Key]:
        """Experiments last seen running: the only ones a clock tick can change."""
        return {key for key, status in self.status.items() if status is RunStatus.RUNNING}

    def observe(self, summaries: Iterable[ExperimentSummary], now: datetime) -> list[Alert]:
        alerts: list[Alert] = []
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
                idle = now - summary.last_activity if summary.last_activity else None
                usual = summary.typical_interval()
                alerts.append(
                    Alert(
                        key,
                        "warning",
                        f"{label(summary)} stalled: no episode for {duration(idle)}"
                        + (
                            f" (usually one every {_short(usual.total_seconds())})" if usual else ""
                        ),
                    )
                )
            elif status is RunStatus.FINISHED and (
                before is RunStatus.RUNNING or (before is RunStatus.EMPTY and _recent(summary, now))
            ):
                alerts.append(
                    Alert(
                        key,
                        "information",
                        f"{label(summary)} finished: {summary.episodes} of "
                        f"{summary.n_episodes} planned episodes",
                    )
                )
            if summary.nonfinite and not bad_before:
                alerts.append(
                    Alert(
                        key,
                        "error",
                        f"{label(summary)}: inf, NaN or text in a reward or loss "
                        f"({summary.nonfinite} episodes so far)",
                    )
                )
        return alerts


def _recent(summary: ExperimentSummary, now: datetime) -> bool:
    return summary.last_activity is not None and now - summary.last_activity < summary.stall_after()


def _short(seconds: float) -> str:
    return f"{seconds:.2f} s" if seconds < 10 else duration(timedelta(seconds=seconds))
