"""An experiment's metrics for charts, downsampled in SQL so spikes survive.

Rows are grouped into at most N buckets by id (the index on experiment_id carries the rowid, so
no sort is needed); each bucket keeps the min, max and mean of every metric, so the global
extremes of a series are always among the points plotted.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import String, func, literal, type_coerce
from sqlmodel import col

from velora_tui.data.database import MetricsDatabase, Schema, finite_or_null, select_columns
from velora_tui.data.models import Episode
from velora_tui.data.values import as_float, parse_timestamp

METRICS = (
    "reward",
    "reward_moving_avg",
    "reward_moving_std",
    "length",
    "actor_loss",
    "critic_loss",
    "entropy_loss",
)


@dataclass(slots=True)
class Band:
    """One metric: per point the mean, and the min and max of what the point stands for."""

    mean: list[float] = field(default_factory=list)
    low: list[float] = field(default_factory=list)
    high: list[float] = field(default_factory=list)

    def has_data(self) -> bool:
        return any(math.isfinite(v) for v in self.mean)


@dataclass(slots=True)
class Series:
    episode: list[float] = field(default_factory=list)
    steps: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    rows: int = 0
    exact: bool = True
    bands: dict[str, Band] = field(default_factory=lambda: {m: Band() for m in METRICS})

    def __len__(self) -> int:
        return len(self.episode)


Fetch = Callable[[Any], Sequence[Any]]


def load_series(database: MetricsDatabase, exp_id: int, buckets: int = 200) -> Series:
    """The experiment's series, exact when it has at most `2 * buckets` rows."""
    summary = database.summaries.get(exp_id)
    first, last = (summary.first_id, summary.last_id) if summary else (None, None)

    def query(fetch: Fetch, schema: Schema) -> Series:
        if first is None or last is None:
            return Series()
        entropy: Any = Episode.entropy_loss if schema.has_entropy else literal(None)
        columns = {
            "reward": Episode.reward,
            "reward_moving_avg": Episode.reward_moving_avg,
            "reward_moving_std": Episode.reward_moving_std,
            "length": Episode.length,
            "actor_loss": Episode.actor_loss,
            "critic_loss": Episode.critic_loss,
            "entropy_loss": entropy,
        }
        count = summary.episodes if summary else 0
        where = (Episode.experiment_id == exp_id, col(Episode.id).between(first, last))
        if count <= 2 * buckets:
            statement = (
                select_columns(
                    Episode.episode_num,
                    literal(1),
                    Episode.length,
                    type_coerce(Episode.created_at, String),
                    *columns.values(),
                    *columns.values(),
                    *columns.values(),
                )
                .where(*where)
                .order_by(col(Episode.id))
            )
            return _build(fetch(statement), exact=True)
        span = last - first + 1
        bucket = ((col(Episode.id) - first) * buckets // span).label("bucket")
        finite_columns = [finite_or_null(c) for c in columns.values()]
        statement = (
            select_columns(
                func.min(Episode.episode_num),
                func.count(),
                func.sum(finite_or_null(Episode.length)),
                type_coerce(func.max(Episode.created_at), String),
                *[func.avg(c) for c in finite_columns],
                *[func.min(c) for c in finite_columns],
                *[func.max(c) for c in finite_columns],
            )
            .where(*where)
            .group_by(bucket)
            .order_by(bucket)
        )
        return _build(fetch(statement), exact=False)

    result = database.run_locked(query)
    return result if isinstance(result, Series) else Series()


def _build(rows: Sequence[Any], exact: bool) -> Series:
    series = Series(exact=exact)
    metric_count = len(METRICS)
    steps = 0.0
    start: datetime | None = None
    for index, row in enumerate(rows):
        episode = as_float(row[0])
        series.episode.append(episode if math.isfinite(episode) else float(index + 1))
        series.rows += int(row[1] or 0)
        length = as_float(row[2])
        steps += length if math.isfinite(length) else 0.0
        series.steps.append(steps)
        stamp = parse_timestamp(row[3])
        if stamp is not None and start is None:
            start = stamp
        series.seconds.append(
            (stamp - start).total_seconds() if stamp is not None and start else math.nan
        )
        for offset, metric in enumerate(METRICS):
            band = series.bands[metric]
            band.mean.append(_finite(row[4 + offset]))
            band.low.append(_finite(row[4 + metric_count + offset]))
            band.high.append(_finite(row[4 + 2 * metric_count + offset]))
    return series


def _finite(value: object) -> float:
    number = as_float(value)
    return number if math.isfinite(number) else math.nan


def thin(series: Series, points: int) -> Series:
    """The series merged down to at most `points` points, keeping each group's min and max."""
    if len(series) <= points or points <= 0:
        return series
    size = -(-len(series) // points)  # ceiling division
    out = Series(rows=series.rows, exact=False)

    def groups(values: list[float]) -> list[list[float]]:
        return [values[i : i + size] for i in range(0, len(values), size)]

    out.episode = [g[0] for g in groups(series.episode)]
    out.steps = [g[-1] for g in groups(series.steps)]
    out.seconds = [g[-1] for g in groups(series.seconds)]
    for metric, band in series.bands.items():
        target = out.bands[metric]
        for means, lows, highs in zip(
            groups(band.mean), groups(band.low), groups(band.high), strict=True
        ):
            finite = [v for v in means if math.isfinite(v)]
            target.mean.append(sum(finite) / len(finite) if finite else math.nan)
            target.low.append(min((v for v in lows if math.isfinite(v)), default=math.nan))
            target.high.append(max((v for v in highs if math.isfinite(v)), default=math.nan))
    return out
