"""Every SQL statement the reader runs, built with SQLModel from velora's models, and the
conversion of their rows into plain values.

Each statement is short: bounded by ids, on the `experiment_id` index (which carries the rowid,
so results come in id order without a sort), and never a scan of the whole table in one go.
Values are read as stored (SQLite keeps whatever it was given: text in a number column, inf,
NULL) and cleaned by `values.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, String, and_, case, func, literal, or_, type_coerce
from sqlmodel import col, select

from velora_tui.data.models import EPISODE_METRICS, Episode, Experiment
from velora_tui.data.records import EpisodeRow
from velora_tui.data.schema import Schema
from velora_tui.data.values import as_float, as_int, parse_timestamp

MAX_FLOAT = 1.7976931348623157e308


def select_columns(*columns: Any) -> Any:
    """SQLModel's `select` over any number of columns (its typed overloads stop at four)."""
    return select(*columns)


def finite(column: Any) -> ColumnElement[bool]:
    """True only for finite numbers: text, blobs, NULL and +-inf are all excluded."""
    return column.between(-MAX_FLOAT, MAX_FLOAT)  # type: ignore[no-any-return]


def finite_or_null(column: Any) -> Any:
    return case((finite(column), column), else_=None)


def metric_column(schema: Schema, name: str) -> Any:
    """A metric's column, or NULL where this schema lacks it (entropy_loss before 0.2.0)."""
    if name == "entropy_loss" and not schema.has_entropy:
        return literal(None)
    return getattr(Episode, name)


# -- experiments -------------------------------------------------------------------------------


def experiments_after(mark: int) -> Any:
    """Experiment rows with an id above `mark`, every value as stored (text where it is text)."""
    return (
        select_columns(
            Experiment.id,
            type_coerce(Experiment.agent, String),
            type_coerce(Experiment.env, String),
            type_coerce(Experiment.config, String),
            type_coerce(Experiment.created_at, String),
        )
        .where(col(Experiment.id) > mark)
        .order_by(col(Experiment.id))
    )


def config_of(exp_id: int) -> Any:
    return select(type_coerce(Experiment.config, String)).where(Experiment.id == exp_id)


def experiment_edges(mark: int) -> Any:
    """Each experiment id found among the episodes, with its first and last episode id up to
    `mark`: a skip scan of the experiment_id index, two seeks per experiment, whatever the number
    of episodes (the first screen needs no more than this)."""
    episode_experiment = col(Episode.experiment_id)
    lowest = select(func.min(episode_experiment)).scalar_subquery()
    ids = select(lowest.label("x")).cte("experiment_ids", recursive=True)
    following = select(func.min(episode_experiment)).where(episode_experiment > ids.c.x)
    ids = ids.union_all(select(following.scalar_subquery()).where(ids.c.x.is_not(None)))

    def edge(which: Any) -> Any:
        within = and_(episode_experiment == ids.c.x, col(Episode.id) <= mark)
        return select(which(Episode.id)).where(within).scalar_subquery()

    return select_columns(ids.c.x, edge(func.min), edge(func.max)).where(ids.c.x.is_not(None))


# -- episodes ----------------------------------------------------------------------------------


def episode_columns(schema: Schema) -> list[Any]:
    return [
        Episode.id,
        Episode.experiment_id,
        Episode.episode_num,
        *(metric_column(schema, name) for name in EPISODE_METRICS),
        type_coerce(Episode.created_at, String),
    ]


def episode_row(values: Sequence[Any]) -> EpisodeRow:
    """A row of `episode_columns`, cleaned: numbers that are not numbers become NaN."""
    metrics = dict(zip(EPISODE_METRICS, values[3:-1], strict=True))
    entropy = metrics["entropy_loss"]
    return EpisodeRow(
        id=int(values[0]),
        experiment_id=as_int(values[1]) or 0,
        episode_num=as_int(values[2]),
        reward=as_float(metrics["reward"]),
        length=as_int(metrics["length"]),
        reward_moving_avg=as_float(metrics["reward_moving_avg"]),
        reward_moving_std=as_float(metrics["reward_moving_std"]),
        actor_loss=as_float(metrics["actor_loss"]),
        critic_loss=as_float(metrics["critic_loss"]),
        entropy_loss=None if entropy is None else as_float(entropy),
        created_at=parse_timestamp(values[-1]),
    )


def max_episode_id() -> Any:
    return select(func.max(Episode.id))


def episodes_by_id(schema: Schema, ids: Sequence[int]) -> Any:
    return select_columns(*episode_columns(schema)).where(col(Episode.id).in_(ids))


def episodes_after(schema: Schema, after: int, limit: int, exp_id: int | None = None) -> Any:
    """Up to `limit` episodes with an id above `after` (of one experiment, or of all), oldest
    first: the live reads, and exports in chunks."""
    statement = select_columns(*episode_columns(schema)).where(col(Episode.id) > after)
    if exp_id is not None:
        statement = statement.where(Episode.experiment_id == exp_id)
    return statement.order_by(col(Episode.id)).limit(limit)


def latest_episodes(schema: Schema, exp_id: int | None, upto: int, limit: int) -> Any:
    """The newest `limit` episodes up to id `upto`, newest first (read from the end: the cost
    does not grow with the file)."""
    statement = select_columns(*episode_columns(schema)).where(col(Episode.id) <= upto)
    if exp_id is not None:
        statement = statement.where(Episode.experiment_id == exp_id)
    return statement.order_by(col(Episode.id).desc()).limit(limit)


def sampled(schema: Schema, exp_id: int, first: int, last: int, points: int, name: str) -> Any:
    """(id, value) of the first episode of an experiment at or after each of `points` ids evenly
    spread from `first` to `last`: one index seek each, so a sparkline of a run of millions of
    episodes costs what one of a hundred does."""
    steps = select(literal(0).label("i")).cte("sample_steps", recursive=True)
    steps = steps.union_all(select(steps.c.i + 1).where(steps.c.i < points - 1))
    position = first + steps.c.i * (last - first) // max(points - 1, 1)

    def at_position(column: Any) -> Any:
        return (
            select(column)
            .where(Episode.experiment_id == exp_id, col(Episode.id) >= position)
            .order_by(col(Episode.id))
            .limit(1)
            .scalar_subquery()
        )

    value = at_position(metric_column(schema, name))
    return select_columns(at_position(Episode.id), value).select_from(steps).order_by(steps.c.i)


# -- aggregates --------------------------------------------------------------------------------


@dataclass(slots=True)
class Aggregate:
    """What a scan of an experiment's rows adds up: rows, best finite reward, and rows with
    inf/NaN/text in a reward or loss. Two aggregates of disjoint rows merge exactly."""

    count: int = 0
    best: float | None = None
    nonfinite: int = 0

    def merge(self, count: Any, best: Any, nonfinite: Any) -> None:
        self.count += int(count or 0)
        value = None if best is None else as_float(best)
        if value is not None and (self.best is None or value > self.best):
            self.best = value
        self.nonfinite += int(nonfinite or 0)


def _aggregate_columns(schema: Schema) -> list[Any]:
    bad = [~finite(Episode.reward), ~finite(Episode.actor_loss), ~finite(Episode.critic_loss)]
    if schema.has_entropy:
        entropy = col(Episode.entropy_loss)
        bad.append(and_(entropy.is_not(None), ~finite(entropy)))
    return [
        func.count(),
        func.max(finite_or_null(Episode.reward)),
        func.sum(case((or_(*bad), 1), else_=0)),
    ]


def aggregate_experiments(schema: Schema, low: Any, high: Any, upto: int) -> Any:
    """(experiment id, count, best, non-finite) of every experiment id from `low` to `high`,
    rows up to id `upto`. `id + 0` keeps SQLite on the experiment_id index (not a rowid scan)."""
    return (
        select_columns(Episode.experiment_id, *_aggregate_columns(schema))
        .where(
            col(Episode.experiment_id).between(low, high),
            col(Episode.id) + 0 <= upto,
        )
        .group_by(Episode.experiment_id)
    )


def aggregate_range(schema: Schema, exp_id: Any, low: int, high: int) -> Any:
    """(count, best, non-finite) of one experiment's rows with ids from `low` to `high`."""
    return select_columns(*_aggregate_columns(schema)).where(
        Episode.experiment_id == exp_id,
        col(Episode.id) >= low,
        col(Episode.id) <= high,
    )


# -- series ------------------------------------------------------------------------------------


def series_buckets(schema: Schema, exp_id: int, base: int, width: int, low: int, high: int) -> Any:
    """One experiment's rows with ids in (low, high], grouped into buckets of `width` ids from
    `base`: per bucket its number, lowest episode number, rows, latest time, and for every metric
    the total, count, min and max of its finite values."""
    values = [finite_or_null(metric_column(schema, name)) for name in EPISODE_METRICS]
    bucket = ((col(Episode.id) - base) // width).label("bucket")
    return (
        select_columns(
            bucket,
            func.min(Episode.episode_num),
            func.count(),
            type_coerce(func.max(Episode.created_at), String),
            *[func.total(v) for v in values],
            *[func.count(v) for v in values],
            *[func.min(v) for v in values],
            *[func.max(v) for v in values],
        )
        .where(
            Episode.experiment_id == exp_id,
            col(Episode.id) > low,
            col(Episode.id) <= high,
        )
        .group_by(bucket)
        .order_by(bucket)
    )
