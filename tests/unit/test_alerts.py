"""Alerts: stalled, finished and non-finite, each raised once, never on the first look."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from velora_tui.data.records import EpisodeRow, ExperimentSummary
from velora_tui.report.alerts import AlertTracker

START = datetime(2026, 11, 24, 12, 0, 0)


def row(num: int, at: datetime, reward: float = 1.0) -> EpisodeRow:
    return EpisodeRow(num, 1, num, reward, 10, 1.0, 0.1, -0.5, 0.5, -0.01, at)


def running(planned: int = 100, episodes: int = 10) -> ExperimentSummary:
    summary = ExperimentSummary(Path("/x/metrics.db"), 1, "Agent", "Env", START, planned)
    for num in range(1, episodes + 1):
        summary.absorb(row(num, START + timedelta(seconds=num)))
    return summary


def test_first_look_only_records() -> None:
    tracker = AlertTracker()
    summary = running()
    assert tracker.observe([summary], START + timedelta(hours=1)) == []


def test_stalled_once_after_twenty_intervals_or_a_minute() -> None:
    tracker = AlertTracker()
    summary = running()
    last = START + timedelta(seconds=10)
    assert tracker.observe([summary], last + timedelta(seconds=1)) == []
    assert tracker.running() == {summary.key}
    assert tracker.observe([summary], last + timedelta(seconds=59)) == []
    alerts = tracker.observe([summary], last + timedelta(seconds=61))
    assert [a.severity for a in alerts] == ["warning"]
    assert "stalled" in alerts[0].message
    assert "usually one every 1.00 s" in alerts[0].message
    assert tracker.observe([summary], last + timedelta(seconds=120)) == []


def test_finished_and_nonfinite_once() -> None:
    tracker = AlertTracker()
    summary = running(planned=12, episodes=10)
    now = START + timedelta(seconds=11)
    tracker.observe([summary], now)
    summary.absorb(row(11, now, reward=float("inf")))
    alerts = tracker.observe([summary], now)
    assert [a.severity for a in alerts] == ["error"]
    summary.absorb(row(12, now + timedelta(seconds=1), reward=float("nan")))
    alerts = tracker.observe([summary], now + timedelta(seconds=1))
    assert [a.severity for a in alerts] == ["information"]
    assert "finished: 12 of 12" in alerts[0].message


def test_history_being_caught_up_is_not_news() -> None:
    tracker = AlertTracker()
    now = START + timedelta(hours=2)
    empty = ExperimentSummary(Path("/x/metrics.db"), 1, "Agent", "Env", START, 10)
    tracker.observe([empty], now)
    for num in range(1, 11):  # an old, finished run written (or read) after the first look
        empty.absorb(row(num, START + timedelta(seconds=num)))
    assert tracker.observe([empty], now) == []
    old = ExperimentSummary(Path("/x/metrics.db"), 2, "Agent", "Env", START, 100)
    tracker.observe([old], now)  # seen empty, then its old rows arrive: stalled, not news
    for num in range(1, 6):
        old.absorb(row(num, START + timedelta(seconds=num)))
    assert old.status(now).value == "stalled"
    assert tracker.observe([old], now) == []
