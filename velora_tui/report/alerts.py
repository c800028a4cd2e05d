"""Alerts worth a notification, found by comparing each experiment with what was seen before:
a run that stalls, a run that reaches its planned episodes, a first inf/NaN or text in its
numbers; and a run's health, from its episodes (docs/health.md): its target reached, a plateau,
a collapse, a loss spike, an entropy collapse, a slowdown.

The one place their rules live: the app shows them as notifications (and, with `--notify`, as
desktop notifications through the terminal), `velora-tui alerts` prints them and hands them to a
command. Nothing here imports Textual.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from velora_tui.data.cleaning import clean_text
from velora_tui.data.database import row_health_values
from velora_tui.data.records import (
    EpisodeRow,
    ExperimentSummary,
    Key,
    RunStatus,
    Update,
    json_time,
)
from velora_tui.data.slurm import Job, limit_text
from velora_tui.data.source_names import source_names
from velora_tui.data.targets import target_for
from velora_tui.report.format import duration, episode_count, experiment_label

if TYPE_CHECKING:
    from pathlib import Path

    from velora_tui.data.database import HealthValues
    from velora_tui.data.monitor import Monitor

KINDS = (
    "stalled",
    "finished",
    "nonfinite",
    *("solved", "plateau", "collapse", "loss_spike", "entropy", "slowdown"),  # HEALTH_KINDS
)


@dataclass(frozen=True, slots=True)
class Alert:
    key: Key
    kind: str  # one of KINDS
    severity: str  # "information", "warning" or "error", as Textual's notify takes them
    message: str  # terminal-safe: names cleaned by clean_text
    episode: int | None = None  # the episode of a health event


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
    summaries = list(summaries)  # looked at twice: by these rules and by the Slurm ones
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
    if alert.episode is not None:
        data["episode"] = alert.episode
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

    def __init__(
        self, rules: HealthRules | None = None, targets: Mapping[str, float] | None = None
    ) -> None:
        self.status: dict[Key, RunStatus] = {}
        self.nonfinite: dict[Key, int] = {}
        self.slurm = SlurmAlerts()
        self.health = HealthTracker(rules, targets)

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
        return self.observe(summaries, now) + self.health.feed(monitor, updates)

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


# -- a run's health ---------------------------------------------------------------------------
#
# Rules read each episode once, in order, and keep a bounded state per run (docs/health.md has
# the rules, their defaults and the reasons for them). A first look evaluates a run's newest
# HISTORY rows (evaluated_past: MetricsDatabase.latest_health), never its whole history; what they
# find is the run's state, not news: alerts are for what happens while watching.

HEALTH_KINDS = ("solved", "plateau", "collapse", "loss_spike", "entropy", "slowdown")
# Rows of a run's past a first look evaluates (its newest): longer than every rule's stretch.
HISTORY = 1000
# Runs whose past is read and evaluated together (a remote host answers FAR_READS at once).
PAST_BATCH = 32
# `ls --json`'s: enough for a solve, a collapse, a spike, the entropy and the rate, not for a
# plateau (500 episodes); `ls` stays within about twice its time without it (docs/health.md).
LS_HISTORY = 300
# How the list, the header and `ls --json` say a run's state: most pressing first.
MARKS = {
    "collapse": "collapse",
    "loss_spike": "spike",
    "entropy": "entropy",
    "slowdown": "slow",
    "plateau": "plateau",
    "solved": "solved",
}
# Robust sigma from a median absolute deviation (normal data): sigma = 1.4826 MAD.
MAD_SIGMA = 1.4826
# How often (in episodes) a loss's MAD is worked out again while no value looks far out; any
# value that might be a spike gets an exact one first.
MAD_EVERY = 16
LOSSES = (("critic_loss", "critic loss"), ("actor_loss", "actor loss"))
# Seconds of episodes added up together for the slowdown rule (its stretches are minutes).
RATE_BUCKET = 10


@dataclass(frozen=True, slots=True)
class HealthRules:
    """Each rule's thresholds (settings' `[health]`; docs/health.md says why these defaults)."""

    window: int = 100  # episodes before the moving average is a full window (SB3, Gymnasium)
    plateau_episodes: int = 500  # no new best moving average for this many episodes
    plateau_min_gain: float = 0.01  # a new best beats the old by this share of the range seen
    collapse_fraction: float = 0.5  # the moving average lost this share of its gains...
    collapse_episodes: int = 100  # ...and stayed there this many episodes
    spike_window: int = 200  # a loss compared with the median and MAD of its last values
    spike_factor: float = 10.0  # this many robust sigmas (1.4826 MAD) away is a spike
    spike_min: int = 50  # values needed before a loss can spike
    spike_cooldown: int = 50  # episodes after a spike in which another is the same event
    entropy_fraction: float = 0.1  # entropy term below this share of its peak size...
    entropy_min: int = 50  # ...once this many episodes have set its peak
    slowdown_fraction: float = 0.5  # steps per minute below this share of the run's own...
    slowdown_minutes: float = 3.0  # ...over this many minutes...
    slowdown_reference: float = 15.0  # ...against this many minutes before them

    def checked(self) -> HealthRules:
        """Out-of-range values (a settings file's) brought to the nearest sensible one."""

        def whole(value: int, low: int, high: int) -> int:
            return min(max(int(value), low), high)

        def share(value: float, low: float, high: float) -> float:
            return min(max(float(value), low), high) if math.isfinite(value) else low

        return HealthRules(
            window=whole(self.window, 1, 100_000),
            plateau_episodes=whole(self.plateau_episodes, 10, 10_000_000),
            plateau_min_gain=share(self.plateau_min_gain, 0.0, 1.0),
            collapse_fraction=share(self.collapse_fraction, 0.05, 1.0),
            collapse_episodes=whole(self.collapse_episodes, 1, 10_000_000),
            spike_window=whole(self.spike_window, 10, 10_000),
            spike_factor=share(self.spike_factor, 2.0, 1e6),
            spike_min=whole(self.spike_min, 5, 10_000),
            spike_cooldown=whole(self.spike_cooldown, 0, 10_000_000),
            entropy_fraction=share(self.entropy_fraction, 0.0, 1.0),
            entropy_min=whole(self.entropy_min, 5, 10_000_000),
            slowdown_fraction=share(self.slowdown_fraction, 0.0, 1.0),
            slowdown_minutes=share(self.slowdown_minutes, 0.5, 24 * 60.0),
            slowdown_reference=share(self.slowdown_reference, 1.0, 7 * 24 * 60.0),
        )


@dataclass(frozen=True, slots=True)
class HealthEvent:
    kind: str  # one of HEALTH_KINDS
    severity: str
    episode: int
    text: str  # what happened, with its numbers (the run's label is put before it)


def posix_time(created: datetime) -> float | None:
    """A row's naive local time as a POSIX time; None for one the platform cannot say as one
    (year 1 in any zone, year 9999 east of UTC: `timestamp()` raises ValueError)."""
    try:
        return created.timestamp()
    except (ValueError, OverflowError, OSError):
        return None


def _num(value: float) -> str:
    """A figure in a message: short, and never more digits than it needs."""
    if not math.isfinite(value):
        return "inf" if value > 0 else "-inf" if value < 0 else "nan"
    if value != 0 and (abs(value) >= 1e6 or abs(value) < 1e-3):
        return f"{value:.3g}"
    return f"{value:,.4g}" if abs(value) >= 1000 else f"{value:.3g}"


class _LossWindow:
    """A loss's last values, kept sorted too (RunHealth._loss adds each): the median in O(1),
    the MAD every few values."""

    __slots__ = ("cooldown", "last_spike", "mad", "mad_age", "order", "values")

    def __init__(self, size: int) -> None:
        self.values: deque[float] = deque(maxlen=size)
        self.order: list[float] = []
        self.mad = math.nan
        self.mad_age = MAD_EVERY
        self.last_spike: int | None = None  # the fed-row count of its last spike
        self.cooldown = False

    def exact_mad(self, median: float) -> float:
        """The median of |v - median| over the window, from its sorted values without sorting
        the deviations: those below the median, read down from it, and those at or above it,
        read up, are two sorted lists (|v - m| is m - v exactly below it), and their middle
        is found by bisection on how many of it come from the first list."""
        order = self.order
        n = len(order)
        split = bisect.bisect_left(order, median)  # order[:split] < median <= order[split:]
        above = n - split
        want = n // 2 + 1  # the deviations up to the middle one (the upper middle when n is even)
        # Take `i` from below the median (the i closest to it) and want - i from above.
        low, high = max(0, want - above), min(want, split)
        while low < high:
            i = (low + high) // 2
            # The i-th deviation below (0-based) vs the last one taken above: take more below?
            if median - order[split - 1 - i] < order[split + want - i - 1] - median:
                low = i + 1
            else:
                high = i
        i, j = low, want - low
        lower = median - order[split - i] if i else -math.inf
        upper = order[split + j - 1] - median if j else -math.inf
        middle = max(lower, upper)  # the want-th smallest deviation
        if n % 2:
            mad = middle
        else:
            # The one before it: the larger of the second-largest taken from each side.
            before_lower = median - order[split - i + 1] if i > 1 else -math.inf
            before_upper = order[split + j - 2] - median if j > 1 else -math.inf
            before = max(before_lower, upper) if lower >= upper else max(lower, before_upper)
            mad = (before + middle) / 2
        mad = abs(mad)  # -0.0 (0.0 - -0.0 above) as abs(v - median) says it: 0.0
        self.mad = mad
        self.mad_age = 0
        return mad


class RunHealth:
    """One run's health, episode by episode (each row once, in id order)."""

    def __init__(self, rules: HealthRules, target: float | None) -> None:
        self.rules = rules
        self.target = target
        self.count = 0  # rows fed
        self.last_id = 0
        self.first_episode: int | None = None
        self.episode = 0  # the newest row's episode number (its count where unreadable)
        # target reached
        self.solved_at: int | None = None
        self.solved_exact = True  # False: already above it at the first row read
        # plateau and collapse (moving average once its window is full)
        self.best = math.nan
        self.best_at = 0  # episode
        self.best_count = 0  # fed-row count of the last progress
        self.progress = math.nan  # the moving average at the last progress
        self.low = math.nan  # lowest moving average so far
        self.low_before_best = math.nan
        self.std_at_best = 0.0
        self.plateau = False
        self.plateau_level = math.nan
        self.below = 0
        self.collapse = False
        self.last_avg = math.nan
        self.root_window = math.sqrt(rules.window)
        # loss spikes
        self.losses = {name: _LossWindow(rules.spike_window) for name, _ in LOSSES}
        self.critic_window = self.losses["critic_loss"]
        self.actor_window = self.losses["actor_loss"]
        self.last_spike: HealthEvent | None = None
        self.spike_count: int | None = None
        # entropy
        self.entropy_level = math.nan
        self.entropy_peak = 0.0
        self.entropy_seen = 0
        self.entropy_low = False
        # slowdown: (second, steps, episodes) buckets of the last minutes, and the sums of the
        # recent stretch and the reference stretch before it
        self.recent: deque[tuple[int, float, int]] = deque()
        self.reference: deque[tuple[int, float, int]] = deque()
        self.recent_steps = self.reference_steps = 0.0
        self.recent_count = self.reference_count = 0
        self.started = math.inf
        self.last_time = -math.inf
        self.recent_span = rules.slowdown_minutes * 60.0  # seconds
        self.reference_span = rules.slowdown_reference * 60.0
        self.slow = False
        self.events: list[HealthEvent] = []  # every event found, newest last (bounded)

    # -- feeding ---------------------------------------------------------------------------

    def feed(self, row: EpisodeRow) -> list[HealthEvent]:
        """The events this episode raises (none for a row already read)."""
        return self.step(*row_health_values(row))

    def feed_values(self, rows: Iterable[HealthValues]) -> None:
        """Rows of the run's past as MetricsDatabase.latest_health reads them (its columns,
        no EpisodeRow each), oldest first: the same rules as `feed`, row by row."""
        step = self.step
        for values in rows:
            step(*values)

    def step(
        self,
        row_id: int,
        number: int | None,
        avg: float,
        std: float,
        critic: float,
        actor: float,
        entropy: float | None,
        created: datetime | None,
        length: int | None,
    ) -> list[HealthEvent]:
        """One episode's values (an EpisodeRow's, made safe by cleaning.py): its events."""
        if row_id <= self.last_id:
            return []
        self.last_id = row_id
        self.count += 1
        if number is None or number <= 0:
            number = self.episode + 1
        self.episode = number
        if self.first_episode is None:
            self.first_episode = number
        found: list[HealthEvent] = []
        if -1e300 < avg < 1e300:  # finite and not absurd (NaN fails both comparisons)
            self._reward(avg, std, found)
        if -math.inf < critic < math.inf:
            self._loss(self.critic_window, "critic loss", critic, found)
        if -math.inf < actor < math.inf:
            self._loss(self.actor_window, "actor loss", actor, found)
        if entropy is not None and -math.inf < entropy < math.inf:
            self._entropy(abs(entropy), found)
        if created is not None:
            at = posix_time(created)
            if at is not None:
                steps = length if length is not None and length > 0 else 1
                self._rate(at, float(min(steps, 10**9)), found)
        if found:
            self.events.extend(found)
            del self.events[:-50]
        return found

    def _reward(self, avg: float, std: float, found: list[HealthEvent]) -> None:
        rules = self.rules
        self.last_avg = avg
        if self.episode < rules.window:
            return  # the moving average is not over a full window yet
        target = self.target
        if target is not None and self.solved_at is None and avg >= target:
            self.solved_at = self.episode
            self.solved_exact = self.count > 1 or self.episode <= rules.window
            self.plateau = self.entropy_low = False
            where = "" if self.solved_exact else " (or before: the first episode read)"
            found.append(
                HealthEvent(
                    "solved",
                    "information",
                    self.episode,
                    f"solved at episode {self.episode}{where}: moving average {_num(avg)}"
                    f" reached the target {_num(target)}",
                )
            )
        low = self.low
        if low != low or avg < low:  # NaN: none yet
            self.low = avg
        if math.isnan(self.best):
            self.best, self.best_at, self.best_count = avg, self.episode, self.count
            self.progress = self.low_before_best = avg
            return
        span = self.best - self.low
        if avg > self.best:
            self.best, self.best_at = avg, self.episode
            self.low_before_best = self.low
            self.std_at_best = std if math.isfinite(std) else 0.0
        # Progress: above the level of the last progress by a share of the range seen (a
        # moving average that wanders at a level does not count; a slow steady climb does).
        # The moving average's own noise (two standard errors) is not progress either.
        noise = 2 * std / self.root_window if 0 < std < math.inf else 0.0
        step = max(rules.plateau_min_gain * span, noise)
        if avg > self.progress + step or (step == 0 and avg > self.progress):
            self.progress, self.best_count = avg, self.count
            # A plateau ends above its best, not with a record of its own noise: one event.
            if self.plateau and avg > self.plateau_level + step:
                self.plateau = False
        # plateau: before the target (a run without one is left alone: converged or stuck?)
        if (
            target is not None
            and self.solved_at is None
            and not self.plateau
            and self.count - self.best_count >= rules.plateau_episodes
        ):
            self.plateau, self.plateau_level = True, self.best
            found.append(
                HealthEvent(
                    "plateau",
                    "warning",
                    self.episode,
                    f"plateau: no new best moving average for {self.count - self.best_count}"
                    f" episodes (best {_num(self.best)} at episode {self.best_at}, now"
                    f" {_num(avg)}; target {_num(target)})",
                )
            )
        # collapse: lost a share of a gain bigger than the episodes' spread, and stayed down
        gain = self.best - self.low_before_best
        if gain > 0 and gain >= self.std_at_best and math.isfinite(gain):
            line = self.best - rules.collapse_fraction * gain
            if avg < line:
                self.below += 1
            else:
                self.below = 0
                self.collapse = False
            if self.below >= rules.collapse_episodes and not self.collapse:
                self.collapse = True
                lost = (self.best - avg) / gain
                found.append(
                    HealthEvent(
                        "collapse",
                        "warning",
                        self.episode,
                        f"collapse: moving average {_num(avg)} at episode {self.episode}, down"
                        f" from its best {_num(self.best)} (episode {self.best_at}) for"
                        f" {self.below} episodes: {lost:.0%} of its gain lost",
                    )
                )

    def _loss(
        self, window: _LossWindow, label: str, value: float, found: list[HealthEvent]
    ) -> None:
        rules = self.rules
        order = window.order
        n = len(order)
        if n >= rules.spike_min:
            half = n // 2
            median = order[half] if n % 2 else (order[half - 1] + order[half]) / 2
            mad = window.mad
            if window.mad_age >= MAD_EVERY or mad != mad:  # stale, or NaN
                mad = window.exact_mad(median)
            distance = abs(value - median)
            factor = rules.spike_factor
            # Most values are within factor x (MAD_SIGMA x MAD) of the median, and _far's
            # scale is never below MAD_SIGMA x MAD: nothing to look at (for a factor >= 0).
            if distance > factor * (MAD_SIGMA * mad) or factor < 0:
                self._far(window, label, value, median, mad, distance, found)
        values = window.values  # the value joins the window (sorted too)
        if len(values) == values.maxlen:
            del order[bisect.bisect_left(order, values[0])]
        values.append(value)
        bisect.insort(order, value)
        window.mad_age += 1

    def _far(
        self,
        window: _LossWindow,
        label: str,
        value: float,
        median: float,
        mad: float,
        distance: float,
        found: list[HealthEvent],
    ) -> None:
        """A value that may be a spike: checked against an exact MAD first."""
        rules = self.rules
        scale = max(MAD_SIGMA * mad, 1e-6 * abs(median), 1e-12)
        if distance > rules.spike_factor * scale:
            scale = max(MAD_SIGMA * window.exact_mad(median), 1e-6 * abs(median), 1e-12)
        if distance > rules.spike_factor * scale and math.isfinite(distance):
            recent = (
                window.last_spike is not None
                and self.count - window.last_spike <= rules.spike_cooldown
            )
            window.last_spike = self.count
            if not recent:
                sigmas = distance / scale
                if median > 0 and value > 0:
                    how = f"{value / median:.1f}x the median"
                else:
                    how = f"{sigmas:.0f} robust sigmas from the median"
                event = HealthEvent(
                    "loss_spike",
                    "warning",
                    self.episode,
                    f"{label} {_num(value)} at episode {self.episode}: {how} of the last"
                    f" {len(window.order)} ({_num(median)}, MAD {_num(mad)})",
                )
                self.last_spike, self.spike_count = event, self.count
                found.append(event)

    def _entropy(self, size: float, found: list[HealthEvent]) -> None:
        rules = self.rules
        self.entropy_seen += 1
        level = self.entropy_level
        # A moving average over about 20 episodes: one small value is not a collapse.
        level = size if math.isnan(level) else level + (size - level) / 10.0
        self.entropy_level = level
        if level > self.entropy_peak and math.isfinite(level):
            self.entropy_peak = level
        if (
            self.entropy_seen >= rules.entropy_min
            and self.target is not None
            and self.solved_at is None
            and self.entropy_peak > 0
        ):
            low = level < rules.entropy_fraction * self.entropy_peak
            if low and not self.entropy_low:
                self.entropy_low = True
                found.append(
                    HealthEvent(
                        "entropy",
                        "warning",
                        self.episode,
                        f"entropy collapse: entropy term {_num(level)} at episode {self.episode},"
                        f" {level / self.entropy_peak:.0%} of its peak {_num(self.entropy_peak)}"
                        f" before the target {_num(self.target)}",
                    )
                )
            elif level >= 2 * rules.entropy_fraction * self.entropy_peak:
                self.entropy_low = False

    def _rate(self, at: float, steps: float, found: list[HealthEvent]) -> None:
        """Steps per minute over the last minutes against the minutes before, from RATE_BUCKET
        buckets (at most ~110 a run at the defaults), with running sums: O(1) an episode."""
        if at < self.last_time:
            return  # a clock set back: its rows say nothing about the rate
        self.last_time = at
        rules = self.rules
        second = math.floor(at / RATE_BUCKET) * RATE_BUCKET
        recent, reference = self.recent, self.reference
        if recent and recent[-1][0] == second:
            when, total, count = recent[-1]
            recent[-1] = (when, total + steps, count + 1)
        else:
            recent.append((second, steps, 1))
        self.recent_steps += steps
        self.recent_count += 1
        recent_from = at - self.recent_span
        start = recent_from - self.reference_span
        while recent and recent[0][0] < recent_from:
            bucket = recent.popleft()
            reference.append(bucket)
            self.recent_steps -= bucket[1]
            self.recent_count -= bucket[2]
            self.reference_steps += bucket[1]
            self.reference_count += bucket[2]
        while reference and reference[0][0] < start:
            bucket = reference.popleft()
            self.reference_steps -= bucket[1]
            self.reference_count -= bucket[2]
        if at < self.started:
            self.started = at
        if self.started > start or self.reference_count < 10:
            return  # the run is younger than the two stretches together, or too sparse
        rate = self.recent_steps / rules.slowdown_minutes
        usual = self.reference_steps / rules.slowdown_reference
        if usual <= 0:
            return
        if not self.slow and rate < rules.slowdown_fraction * usual:
            self.slow = True
            found.append(
                HealthEvent(
                    "slowdown",
                    "warning",
                    self.episode,
                    f"slowdown: {_num(rate)} steps/min over the last"
                    f" {rules.slowdown_minutes:g} min ({self.recent_count} episodes),"
                    f" {rate / usual:.0%} of its {_num(usual)} steps/min in the"
                    f" {rules.slowdown_reference:g} min before",
                )
            )
        elif self.slow and rate >= min(1.0, 1.5 * rules.slowdown_fraction) * usual:
            self.slow = False

    def compact(self) -> None:
        """Let go of the windows (a run that is not running: 10,000 finished runs must not
        hold 10,000 sets of them). Its marks, events and bests stay; rows that come later
        fill the windows again."""
        for window in self.losses.values():
            window.values = deque(maxlen=window.values.maxlen)
            window.order = []
            window.mad, window.mad_age = math.nan, MAD_EVERY
        self.recent = deque()
        self.reference = deque()
        self.recent_steps = self.reference_steps = 0.0
        self.recent_count = self.reference_count = 0
        self.started = math.inf

    # -- what holds ------------------------------------------------------------------------

    def spiking(self) -> bool:
        return self.spike_count is not None and (
            self.count - self.spike_count <= self.rules.spike_cooldown
        )

    def conditions(self) -> list[str]:
        """The kinds that hold now, most pressing first."""
        held = {
            "collapse": self.collapse,
            "loss_spike": self.spiking(),
            "entropy": self.entropy_low,
            "slowdown": self.slow,
            "plateau": self.plateau,
            "solved": self.solved_at is not None,
        }
        return [kind for kind in MARKS if held[kind]]

    def mark(self) -> str:
        """A word for the list and the header: the most pressing condition, or ''."""
        held = self.conditions()
        return MARKS[held[0]] if held else ""

    def current(self) -> list[HealthEvent]:
        """What a report of now says (`alerts` without -f): the run's solve, its conditions
        that hold, and its latest loss spike among the rows read."""
        kinds = set(self.conditions()) | {"loss_spike"}
        latest: dict[str, HealthEvent] = {}
        for event in self.events:
            if event.kind in kinds:
                latest[event.kind] = event
        if self.solved_at is not None and "solved" not in latest:
            latest["solved"] = HealthEvent(
                "solved", "information", self.solved_at, f"solved at episode {self.solved_at}"
            )
        return [latest[kind] for kind in HEALTH_KINDS if kind in latest]

    def note(self) -> str:
        """The most pressing condition said with its numbers (the header's line)."""
        held = self.conditions()
        if not held:
            return ""
        kind = held[0]
        if kind == "solved":
            return f"solved at episode {self.solved_at}" + (
                "" if self.solved_exact else " or before"
            )
        for event in reversed(self.events):
            if event.kind == kind:
                return event.text
        return MARKS[kind]

    def to_json(self) -> dict[str, Any]:
        return {
            "state": self.mark() or "ok",
            "conditions": self.conditions(),
            "target": self.target,
            "solved_at": self.solved_at,
            "solved_at_exact": self.solved_exact if self.solved_at is not None else None,
            "episodes_evaluated": self.count,
        }


# A run idle this long is unlikely to write again soon: its windows are let go (compact).
IDLE = timedelta(hours=1)


def done_with(summary: ExperimentSummary, now: datetime) -> bool:
    last = summary.last_activity
    return summary.finished or last is None or now - last > IDLE


def history_rows(monitor: Monitor, key: Key, limit: int = HISTORY) -> list[EpisodeRow]:
    """A run's newest `limit` rows as EpisodeRows, oldest first (none when its source cannot
    be read now): the plain way to a first look, `evaluated(..., history_rows(...))`, which
    evaluated_past's is held to (tests/unit/test_health_past.py)."""
    database = monitor.databases.get(key[0])
    if database is None:
        return []
    return database.latest_episodes(key[1], limit)


def evaluated(rules: HealthRules, target: float | None, rows: Iterable[EpisodeRow]) -> RunHealth:
    """A run's health from rows of its past, their events kept as its state (not alerts)."""
    health = RunHealth(rules, target)
    for row in rows:
        health.feed(row)
    return health


def evaluated_past(
    monitor: Monitor, key: Key, rules: HealthRules, target: float | None, limit: int = HISTORY
) -> RunHealth:
    """`evaluated(rules, target, history_rows(monitor, key, limit))`, read and fed without an
    EpisodeRow a row (MetricsDatabase.latest_health): what the commands' first look costs
    grows with the rows read, at a few microseconds each (docs/performance.md)."""
    health = RunHealth(rules, target)
    database = monitor.databases.get(key[0])
    if database is not None:
        health.feed_values(database.latest_health(key[1], limit))
    return health


def evaluated_pasts(
    monitor: Monitor,
    summaries: Iterable[ExperimentSummary],
    rules: HealthRules,
    target: Callable[[ExperimentSummary], float | None],
    limit: int = HISTORY,
    batch: int = PAST_BATCH,
) -> Iterator[list[tuple[ExperimentSummary, RunHealth]]]:
    """`evaluated_past` of many runs, `batch` at a time, each with its exact solve: a file's
    runs are read together (a remote host answers several at once). Each batch is yielded as it
    is done: the app shows it, and may stop in between."""
    runs = list(summaries)
    for start in range(0, len(runs), batch):
        chunk = runs[start : start + batch]
        by_db: dict[Path, list[int]] = {}
        for summary in chunk:
            by_db.setdefault(summary.db, []).append(summary.id)
        past: dict[Key, list[HealthValues]] = {}
        for db, ids in by_db.items():
            database = monitor.databases.get(db)
            if database is not None:
                read = database.latest_health_of(ids, limit)
                past.update(((db, exp_id), values) for exp_id, values in read.items())
        done = []
        for summary in chunk:
            health = RunHealth(rules, target(summary))
            health.feed_values(past.get(summary.key, []))
            done.append((summary, health))
        exact_solves(monitor, done)
        yield done


def exact_solves(monitor: Monitor, runs: Iterable[tuple[ExperimentSummary, RunHealth]]) -> None:
    """Runs already solved at the first of their rows read: the episode where each one's moving
    average first reached the target, looked up on its index (data/group_reads.py, the
    groups' episodes to the target), where that is at or after a full window. Otherwise it
    stays "or before" (velora's zero-padded average reaches a negative target at once). A
    file's runs are looked through together (a remote host answers several at once)."""
    wanted = [
        (summary, health)
        for summary, health in runs
        if health.target is not None and health.solved_at is not None and not health.solved_exact
    ]
    if not wanted:
        return
    from velora_tui.data.group_reads import ReachedReader

    asked = [(summary, health.target) for summary, health in wanted if health.target is not None]
    reached = ReachedReader().read(monitor.databases, asked)
    for summary, health in wanted:
        found, target, solved = reached.get(summary.key), health.target, health.solved_at
        if found is None or target is None or solved is None:
            continue
        if not health.rules.window <= found <= solved:
            continue
        episode = int(found)
        health.solved_at, health.solved_exact = episode, True
        text = f"solved at episode {episode}: moving average reached the target {_num(target)}"
        for index, event in enumerate(health.events):
            if event.kind == "solved":
                health.events[index] = HealthEvent(event.kind, event.severity, episode, text)


class HealthTracker:
    """Every run's health: evaluated once from its newest rows, then fed as episodes arrive."""

    def __init__(
        self, rules: HealthRules | None = None, targets: Mapping[str, float] | None = None
    ) -> None:
        self.rules = (rules or HealthRules()).checked()
        self.targets = dict(targets or {})
        self.runs: dict[Key, RunHealth] = {}
        # Rows that arrived for a run whose past is still being read (the app's worker).
        self.waiting: dict[Key, deque[EpisodeRow]] = {}

    def target(self, summary: ExperimentSummary) -> float | None:
        return target_for(summary.env, self.targets)

    def get(self, key: Key) -> RunHealth | None:
        return self.runs.get(key)

    def mark(self, key: Key) -> str:
        health = self.runs.get(key)
        return health.mark() if health is not None else ""

    def label(self, summary: ExperimentSummary) -> bool:
        """Put the run's health on its summary (the list and the header show it); whether it
        changed."""
        health = self.runs.get(summary.key)
        mark, note = (health.mark(), health.note()) if health is not None else ("", "")
        if (mark, note) == (summary.health, summary.health_note):
            return False
        summary.health, summary.health_note = mark, note
        return True

    def needs_past(self, summary: ExperimentSummary) -> bool:
        return summary.key not in self.runs and summary.key not in self.waiting

    def expect(self, key: Key) -> None:
        """Its past is being read: rows that arrive meanwhile wait for it."""
        self.waiting.setdefault(key, deque(maxlen=HISTORY))

    def install(
        self, key: Key, health: RunHealth, summary: ExperimentSummary | None = None
    ) -> None:
        """A run's past, evaluated (in a worker): the rows that came meanwhile follow, silently.
        A finished run, or one idle for an hour, lets go of its windows (RunHealth.compact)."""
        for row in self.waiting.pop(key, ()):
            health.feed(row)
        self.runs[key] = health
        if summary is not None and done_with(summary, datetime.now()):
            health.compact()

    def pending(self, monitor: Monitor) -> list[ExperimentSummary]:
        """Runs whose rows arrived before their past was read."""
        found = (monitor.summary(key) for key in list(self.waiting))
        return [s for s in found if s is not None]

    def read_past(
        self, monitor: Monitor, summaries: Iterable[ExperimentSummary], limit: int = HISTORY
    ) -> None:
        """Evaluate the newest `limit` rows of each run not known yet, here and now (the
        commands): each file's runs read together (a remote host answers several at once)."""
        unknown = [s for s in summaries if s.key not in self.runs]
        for done in evaluated_pasts(monitor, unknown, self.rules, self.target, limit):
            for summary, health in done:
                self.install(summary.key, health, summary)
                self.label(summary)

    def feed(self, monitor: Monitor, updates: Iterable[Update]) -> list[Alert]:
        """The alerts of new episodes. A run first seen from its first episode starts here;
        one first seen later waits for its past (read_past, or the app's worker)."""
        alerts: list[Alert] = []
        touched: set[Key] = set()
        for update in updates:
            if update.reset:
                for key in [k for k in self.runs if k[0] == update.db]:
                    del self.runs[key]
                for key in [k for k in self.waiting if k[0] == update.db]:
                    del self.waiting[key]
            for row in update.episodes:
                key = (update.db, row.experiment_id)
                health = self.runs.get(key)
                if health is None:
                    if key in self.waiting:
                        self.waiting[key].append(row)
                        continue
                    summary = monitor.summary(key)
                    if summary is None or summary.first_id != row.id:
                        self.expect(key)
                        self.waiting[key].append(row)
                        continue
                    health = self.runs[key] = RunHealth(self.rules, self.target(summary))
                touched.add(key)
                events = health.feed(row)
                if events:
                    summary = monitor.summary(key)
                    label = experiment_label(summary) if summary is not None else f"run {key[1]}"
                    alerts.extend(
                        Alert(key, e.kind, e.severity, f"{label}: {e.text}", e.episode)
                        for e in events
                    )
        for key in touched:  # a mark also ends without an event (a spike's stretch is over)
            summary = monitor.summary(key)
            if summary is not None:
                self.label(summary)
        return alerts

    def current(
        self, summaries: Iterable[ExperimentSummary]
    ) -> list[tuple[ExperimentSummary, HealthEvent]]:
        found: list[tuple[ExperimentSummary, HealthEvent]] = []
        for summary in summaries:
            health = self.runs.get(summary.key)
            if health is not None:
                found.extend((summary, event) for event in health.current())
        return found

    def alerts_now(self, summaries: Iterable[ExperimentSummary]) -> list[Alert]:
        return [
            Alert(s.key, e.kind, e.severity, f"{experiment_label(s)}: {e.text}", e.episode)
            for s, e in self.current(summaries)
        ]
