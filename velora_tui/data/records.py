"""Plain values the data layer hands out: rows, summaries, source states, updates."""

from __future__ import annotations

import itertools
import math
import statistics
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from velora_tui.data.cleaning import as_float, as_int, parse_timestamp
from velora_tui.data.slurm import JobTie
from velora_tui.data.source_names import source_names

Key = tuple[Path, int]  # (database path, experiment id): an experiment across sources


class SourceState(StrEnum):
    WAITING = "waiting"
    OK = "ok"
    LOCKED = "locked"
    UNREADABLE = "unreadable"
    # Its file system calls have not come back within the deadline (data/deadline_lanes.py).
    NOT_RESPONDING = "not responding"


@dataclass(frozen=True, slots=True)
class SourceStatus:
    path: Path
    state: SourceState
    message: str = ""

    def describe(self) -> str:
        place = source_names.name(self.path)
        return f"{place}: {self.state}" + (f": {self.message}" if self.message else "")


class RunStatus(StrEnum):
    RUNNING = "running"
    STALLED = "stalled"
    FINISHED = "finished"
    EMPTY = "empty"
    ENDED = "ended"  # its Slurm job is over before its planned episodes (never "stalled")


@dataclass(frozen=True, slots=True)
class EpisodeRow:
    id: int
    experiment_id: int
    episode_num: int | None
    reward: float
    length: int | None
    reward_moving_avg: float
    reward_moving_std: float
    actor_loss: float
    critic_loss: float
    entropy_loss: float | None
    created_at: datetime | None

    @property
    def has_nonfinite(self) -> bool:
        """inf/NaN or text in a reward, its moving average or std, or a loss (the README's
        `!`; NaN in these is what from_stored makes of text). The scan counts the same rows in
        SQL (queries.finite_row)."""
        values = (
            self.reward,
            self.reward_moving_avg,
            self.reward_moving_std,
            self.actor_loss,
            self.critic_loss,
        )
        entropy_bad = self.entropy_loss is not None and not math.isfinite(self.entropy_loss)
        return entropy_bad or not all(math.isfinite(v) for v in values)

    @classmethod
    def from_stored(cls, values: Sequence[Any]) -> EpisodeRow:
        """A row read as stored, in EPISODE_FIELDS order: numbers that are not numbers become
        NaN, times that are not times None (entropy_loss stays None where the schema has none)."""
        entropy = values[9]
        return cls(
            id=int(values[0]),
            experiment_id=as_int(values[1]) or 0,
            episode_num=as_int(values[2]),
            reward=as_float(values[3]),
            length=as_int(values[4]),
            reward_moving_avg=as_float(values[5]),
            reward_moving_std=as_float(values[6]),
            actor_loss=as_float(values[7]),
            critic_loss=as_float(values[8]),
            entropy_loss=None if entropy is None else as_float(entropy),
            created_at=parse_timestamp(values[10]),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "experiment_id": self.experiment_id,
            "episode_num": self.episode_num,
            "reward": json_number(self.reward),
            "length": self.length,
            "reward_moving_avg": json_number(self.reward_moving_avg),
            "reward_moving_std": json_number(self.reward_moving_std),
            "actor_loss": json_number(self.actor_loss),
            "critic_loss": json_number(self.critic_loss),
            "entropy_loss": json_number(self.entropy_loss),
            "created_at": json_time(self.created_at),
        }


EPISODE_FIELDS = tuple(EpisodeRow.__slots__)


@dataclass(frozen=True, slots=True)
class StoredEpisode(EpisodeRow):
    """An episode read for an export: also its values exactly as stored (EPISODE_FIELDS
    order), which an export writes (text in a number column stays its text, a time keeps its
    stored form and offset) where the fields above are what the monitor makes of them."""

    stored: tuple[Any, ...] = ()

    @classmethod
    def read(cls, values: Sequence[Any]) -> StoredEpisode:
        row = cls.from_stored(values)
        assert isinstance(row, StoredEpisode)
        object.__setattr__(row, "stored", tuple(values))  # frozen: set once, as it is made
        return row


@dataclass(frozen=True, slots=True)
class MetricColumn:
    """How an episode's metric is shown wherever episodes are listed (the app's tail, `tail`)."""

    name: str  # the EpisodeRow field (and velora's column)
    label: str
    digits: int  # decimals of a float


# The metrics of an episode, in velora's column order (the columns between its episode number
# and its time): the one list of them.
EPISODE_COLUMNS = (
    MetricColumn("reward", "Reward", 2),
    MetricColumn("length", "Length", 0),
    MetricColumn("reward_moving_avg", "Avg", 2),
    MetricColumn("reward_moving_std", "Std", 2),
    MetricColumn("actor_loss", "Actor loss", 4),
    MetricColumn("critic_loss", "Critic loss", 4),
    MetricColumn("entropy_loss", "Entropy loss", 4),
)
EPISODE_METRICS = tuple(column.name for column in EPISODE_COLUMNS)
assert EPISODE_FIELDS[3:-1] == EPISODE_METRICS, "EpisodeRow.from_stored reads them in this order"

# A run counts as stalled after this long without an episode, or 20x its usual interval.
STALL_FLOOR = timedelta(seconds=60)
STALL_FACTOR = 20
# The times of a run's newest episodes kept for its usual interval (the median of their gaps);
# a first load reads as many (data/database.py), so a run reads the same cold as live.
RECENT = 64
# Between the times a first load reads in one value (queries.experiment_edges): a control
# character, which no time holds.
TIME_SEPARATOR = "\x1f"


@dataclass(slots=True)
class ExperimentSummary:
    """One experiment and the aggregates the list shows, updated row by row."""

    db: Path
    id: int
    agent: str
    env: str
    created_at: datetime | None
    n_episodes: int | None = None
    episodes: int = 0
    first_id: int | None = None
    last_id: int | None = None
    last_episode_num: int | None = None
    last_reward: float = math.nan
    best_reward: float = math.nan
    reward_moving_avg: float = math.nan
    first_activity: datetime | None = None
    last_activity: datetime | None = None
    nonfinite: int = 0
    # False while the rows of a first load are being added up (data/exact_totals.py): until then
    # `episodes` is an estimate from the first and last rows' episode numbers, and
    # `best_reward` and `nonfinite` count only the rows read since.
    scanned: bool = True
    recent: deque[datetime] = field(default_factory=lambda: deque(maxlen=RECENT))
    # The Slurm job(s) that may have written it (data/slurm_monitor.py; None: no Slurm source).
    job: JobTie | None = None
    # Its health as the alert rules see it (report/alerts.py: HealthTracker sets both): a short
    # word (solved, plateau, collapse, spike, entropy, slow; "" for none, or not evaluated yet)
    # and the line that says it with its numbers.
    health: str = ""
    health_note: str = ""

    @property
    def key(self) -> Key:
        return (self.db, self.id)

    def absorb(self, row: EpisodeRow) -> None:
        self.episodes += 1
        if self.first_id is None:
            self.first_id = row.id
            self.first_activity = row.created_at
        self.last_id = row.id
        self.last_episode_num = row.episode_num
        self.last_reward = row.reward
        if math.isfinite(row.reward) and not row.reward <= self.best_reward:
            self.best_reward = row.reward
        self.reward_moving_avg = row.reward_moving_avg
        if row.has_nonfinite:
            self.nonfinite += 1
        if row.created_at is not None:
            self.last_activity = row.created_at
            self.recent.append(row.created_at)

    def recall(self, times: Sequence[datetime | None]) -> None:
        """The times of its newest rows, oldest first, as a first load reads them: what the
        live path would have kept of them, and the last valid one as its last activity (a
        newest row whose time is unreadable does not make the run's last episode unknown)."""
        self.recent.extend(time for time in times if time is not None)
        if self.recent:
            self.last_activity = self.recent[-1]

    def typical_interval(self) -> timedelta | None:
        """Median gap between its recent episodes (the last RECENT), else, with fewer than 6
        times, the run's mean gap."""
        stamps = list(self.recent)
        if len(stamps) >= 6:
            gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(stamps)]
            return timedelta(seconds=max(0.0, statistics.median(gaps)))
        if self.first_activity and self.last_activity and self.episodes > 1:
            return (self.last_activity - self.first_activity) / (self.episodes - 1)
        return None

    @property
    def reached(self) -> int:
        """The episode the run has reached towards its plan. Velora numbers the episodes of a
        training 1..n_episodes and writes the last one when it ends, so its last row's number
        says where it is: not the row count, which a run numbered again from 1 in the same
        experiment overstates and lost rows understate. The count only where that number is
        unreadable."""
        number = self.last_episode_num
        return number if number is not None and number > 0 else self.episodes

    @property
    def finished(self) -> bool:
        if not self.n_episodes:
            return False
        return self.reached >= self.n_episodes

    def stall_after(self) -> timedelta:
        interval = self.typical_interval()
        if interval is None:
            return STALL_FLOOR
        return max(STALL_FLOOR, interval * STALL_FACTOR)

    def status(self, now: datetime) -> RunStatus:
        if self.episodes == 0:
            return RunStatus.EMPTY
        if self.finished:
            return RunStatus.FINISHED
        if self.job is not None and self.job.ended:
            return RunStatus.ENDED
        if self.last_activity is None or now - self.last_activity > self.stall_after():
            return RunStatus.STALLED
        return RunStatus.RUNNING

    def episodes_per_minute(self) -> float | None:
        interval = self.typical_interval()
        if interval is None or interval.total_seconds() <= 0:
            return None
        return 60.0 / interval.total_seconds()

    def eta(self) -> timedelta | None:
        if not self.n_episodes or self.finished:
            return None
        interval = self.typical_interval()
        if interval is None:
            return None
        return interval * (self.n_episodes - self.reached)

    def to_json(self, now: datetime) -> dict[str, Any]:
        return {
            "db": str(self.db),
            "id": self.id,
            "agent": self.agent,
            "env": self.env,
            "created_at": json_time(self.created_at),
            "episodes": self.episodes,
            "last_episode_num": self.last_episode_num,
            "n_episodes": self.n_episodes,
            "last_reward": json_number(self.last_reward),
            "best_reward": json_number(self.best_reward),
            "reward_moving_avg": json_number(self.reward_moving_avg),
            "last_activity": json_time(self.last_activity),
            "status": str(self.status(now)),
        } | ({"nonfinite_episodes": self.nonfinite} if self.scanned else {})


@dataclass(slots=True)
class Update:
    """What one refresh of one database found."""

    db: Path
    episodes: list[EpisodeRow] = field(default_factory=list)
    experiments: set[int] = field(default_factory=set)
    reset: bool = False
    status_changed: bool = False
    more: bool = False
    first_load: bool = False  # summarised from first and last rows: a scan is pending

    def __bool__(self) -> bool:
        return bool(self.episodes or self.experiments or self.reset or self.status_changed)


def json_number(value: float | None) -> float | str | None:
    """JSON has no inf/NaN: finite floats as numbers, the rest as strings."""
    if value is None:
        return None
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def json_value(data: Any) -> Any:
    """Parsed JSON (a config) that json.dumps writes as standard JSON: NaN and +-inf as
    json_number's strings, at any depth (iteratively: a config may be nested as deeply as the
    parser allowed)."""
    holder = [data]
    stack: list[tuple[Any, Any]] = [(holder, 0)]
    while stack:
        parent, key = stack.pop()
        value = parent[key]
        if isinstance(value, float):
            parent[key] = json_number(value)
        elif isinstance(value, dict):
            parent[key] = value = dict(value)  # a copy: the caller's data is left as it is
            stack.extend((value, k) for k in value)
        elif isinstance(value, list):
            parent[key] = value = list(value)
            stack.extend((value, i) for i in range(len(value)))
    return holder[0]


def json_time(value: datetime | None) -> str | None:
    return value.isoformat(sep=" ") if value else None
