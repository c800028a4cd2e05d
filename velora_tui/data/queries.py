"""Every SQL statement the reader runs, built with SQLModel from velora's models and compiled
once to SQLite's SQL, with named parameters (`:after`, `:limit`...) given at each run.

Each statement is short: bounded by ids, on the `experiment_id` index (which carries the rowid,
so results come in id order without a sort), and never a scan of the whole table in one go.
Values come back as stored (SQLite keeps whatever it was given: text in a number column, inf,
NULL) and are cleaned by `cleaning.py` and `records.py`.

This module imports SQLAlchemy, which costs more than all of Textual to import (half a second of
every command's start): every statement is compiled ahead of time into `compiled_sql.py`
(regenerate it with `make sql`; a test checks it is current), and the reader takes them from
there through `statements.py`, so reading never imports SQLAlchemy.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    Integer,
    LargeBinary,
    String,
    and_,
    bindparam,
    case,
    cast,
    func,
    literal,
    null,
    or_,
)
from sqlalchemy import type_coerce as as_stored
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import aliased
from sqlmodel import col, select
from sqlmodel.sql.expression import Select

from velora_tui.data.connection import Prepared
from velora_tui.data.models import Episode, Experiment
from velora_tui.data.records import EPISODE_METRICS, TIME_SEPARATOR
from velora_tui.data.schema import Schema

MAX_FLOAT = 1.7976931348623157e308
_DIALECT = sqlite.dialect(paramstyle="named")


def compiled(statement: Any) -> Prepared:
    """A statement's SQL for SQLite, with named parameters, and its literals' values."""
    result = statement.compile(dialect=_DIALECT)
    constants = {
        result.bind_names[bind]: bind.value for bind in result.binds.values() if not bind.required
    }
    return Prepared(str(result), constants)


def number(name: str) -> Any:
    """A named integer parameter (an id, a count, a limit)."""
    return bindparam(name, type_=Integer)


def select_columns(*columns: Any) -> Select[Any]:
    """SQLModel's `select` over any number of columns (its typed overloads stop at four)."""
    return select(*columns)  # type: ignore[no-any-return]


def finite(column: Any) -> ColumnElement[bool]:
    """True only for finite numbers: text, blobs, NULL and +-inf are all excluded."""
    return column.between(-MAX_FLOAT, MAX_FLOAT)  # type: ignore[no-any-return]


def finite_or_null(column: Any) -> Any:
    return case((finite(column), column), else_=None)


def metric_column(schema: Schema, name: str, entity: Any = Episode) -> Any:
    """A metric's column, or NULL where this schema lacks it (entropy_loss before 0.2.0)."""
    if name == "entropy_loss" and not schema.has_entropy:
        return null()
    return getattr(entity, name)


# -- experiments -------------------------------------------------------------------------------


@cache
def experiments_after() -> Prepared:
    """Up to `:limit` experiment rows with an id above `:after`, every value as stored."""
    return compiled(
        select_columns(
            Experiment.id,
            as_stored(Experiment.agent, String),
            as_stored(Experiment.env, String),
            as_stored(Experiment.config, String),
            as_stored(Experiment.created_at, String),
        )
        .where(col(Experiment.id) > number("after"))
        .order_by(col(Experiment.id))
        .limit(number("limit"))
    )


@cache
def configs_after() -> Prepared:
    """Up to `:limit` experiments' ids and configs, as stored, the lowest ids above `:after`
    first (grouping reads thousands of configs: a statement for each would cost more)."""
    return compiled(
        select_columns(Experiment.id, as_stored(Experiment.config, String))
        .where(col(Experiment.id) > number("after"))
        .order_by(col(Experiment.id))
        .limit(number("limit"))
    )


@cache
def first_reaching() -> Prepared:
    """The episode number of experiment `:exp_id`'s first row with an id in (`:after`,
    `:upto`], numbered `:window` or later, whose moving average is a finite number at or above
    `:target` (text in a number column compares above every number in SQLite: `finite` keeps
    it out): where the run reached its env's target (targets.SOLVED_WINDOW says why the
    window). On the `experiment_id` index, in id order; the caller bounds the id range
    (group_reads.read_reached)."""
    average = col(Episode.reward_moving_avg)
    return compiled(
        select(as_stored(Episode.episode_num, String))
        .where(
            col(Episode.experiment_id) == number("exp_id"),
            col(Episode.id) > number("after"),
            col(Episode.id) <= number("upto"),
            col(Episode.episode_num) >= number("window"),
            finite(average),
            average >= bindparam("target", type_=Float),
        )
        .order_by(col(Episode.id))
        .limit(1)
    )


@cache
def config_of() -> Prepared:
    """The config of experiment `:exp_id`, as stored."""
    return compiled(
        select(as_stored(Experiment.config, String)).where(Experiment.id == bindparam("exp_id"))
    )


@cache
def experiment_edges(schema: Schema) -> Prepared:
    """Up to `:count` experiment ids found among the episodes, the lowest above `:after` first,
    each with its first and last episode rows up to id `:upto` (`episode_columns` twice; NULL
    where it has none up to there), and the times of its newest `:recent` rows up to there
    (`created_at` as stored, as bytes, newest first, joined by TIME_SEPARATOR: one value, so
    a read of many experiments stays a row each): a skip scan of the experiment_id index, two
    seeks per experiment and one short stretch of the index (which carries the rowid, so the
    newest rows come without a sort), whatever the number of episodes. All a first screen
    needs."""
    experiment = col(Episode.experiment_id)

    def lowest_above(value: Any) -> Any:
        return select(func.min(experiment)).where(experiment > value).scalar_subquery()

    ids = select(lowest_above(bindparam("after")).label("x"), literal(1).label("n")).cte(
        "experiment_ids", recursive=True
    )
    ids = ids.union_all(
        select(lowest_above(ids.c.x), ids.c.n + 1).where(
            ids.c.x.is_not(None), ids.c.n < number("count")
        )
    )

    def edge(which: Any) -> Any:
        within = and_(experiment == ids.c.x, col(Episode.id) <= number("upto"))
        return select(which(Episode.id)).where(within).scalar_subquery()

    # Bytes: a time that is not valid UTF-8 text must not make the whole value unreadable.
    newest = aliased(Episode, name="newest")
    latest = (
        select(cast(newest.created_at, LargeBinary).label("at"))
        .where(col(newest.experiment_id) == ids.c.x, col(newest.id) <= number("upto"))
        .order_by(col(newest.id).desc())
        .limit(number("recent"))
        .correlate(ids)
        .subquery("latest")
    )
    joined = func.group_concat(latest.c.at, func.char(ord(TIME_SEPARATOR)))
    recent = select(cast(joined, LargeBinary)).scalar_subquery()
    edges = (
        select_columns(
            ids.c.x.label("x"),
            edge(func.min).label("first_id"),
            edge(func.max).label("last_id"),
            recent.label("recent"),
        )
        .where(ids.c.x.is_not(None))
        .cte("edges")
    )
    first, last = aliased(Episode, name="first"), aliased(Episode, name="last")
    return compiled(
        select_columns(
            edges.c.x,
            *episode_columns(schema, first),
            *episode_columns(schema, last),
            edges.c.recent,
        )
        .join_from(edges, first, col(first.id) == edges.c.first_id, isouter=True)
        .join(last, col(last.id) == edges.c.last_id, isouter=True)
        .order_by(edges.c.x)
    )


# -- episodes ----------------------------------------------------------------------------------


def episode_columns(schema: Schema, entity: Any = Episode) -> list[Any]:
    """An episode's columns in EpisodeRow's order (EpisodeRow.from_stored reads them)."""
    return [
        entity.id,
        entity.experiment_id,
        entity.episode_num,
        *(metric_column(schema, name, entity) for name in EPISODE_METRICS),
        as_stored(entity.created_at, String),
    ]


@cache
def max_episode_id() -> Prepared:
    return compiled(select(func.max(Episode.id)))


@cache
def experiment_episodes(schema: Schema) -> Prepared:
    """Up to `:limit` episodes of experiment `:exp_id` with an id above `:after`, oldest first:
    an export, in chunks."""
    return compiled(
        select_columns(*episode_columns(schema))
        .where(col(Episode.id) > number("after"), Episode.experiment_id == bindparam("exp_id"))
        .order_by(col(Episode.id))
        .limit(number("limit"))
    )


@cache
def new_episodes(schema: Schema) -> Prepared:
    """Up to `:limit` episodes with an id above `:after`, oldest first, each with the newest
    experiment id after its columns: the live read, which so sees a new experiment row as soon
    as it is committed, in the same read."""
    newest = select(func.max(Experiment.id)).scalar_subquery().label("newest_experiment")
    return compiled(
        select_columns(*episode_columns(schema), newest)
        .where(col(Episode.id) > number("after"))
        .order_by(col(Episode.id))
        .limit(number("limit"))
    )


@cache
def latest_episodes(schema: Schema, one_experiment: bool) -> Prepared:
    """The newest `:limit` episodes up to id `:upto` (of experiment `:exp_id`, or of all),
    newest first: read from the end, so the cost does not grow with the file."""
    statement = select_columns(*episode_columns(schema)).where(col(Episode.id) <= number("upto"))
    if one_experiment:
        statement = statement.where(Episode.experiment_id == bindparam("exp_id"))
    return compiled(statement.order_by(col(Episode.id).desc()).limit(number("limit")))


# The columns the health rules read (report/alerts.py), in the order of database.HealthValues.
HEALTH_COLUMNS = (
    "id",
    "episode_num",
    "reward_moving_avg",
    "reward_moving_std",
    "critic_loss",
    "actor_loss",
    "entropy_loss",
    "created_at",
    "length",
)


@cache
def latest_health(schema: Schema) -> Prepared:
    """The newest `:limit` episodes of experiment `:exp_id` up to id `:upto`, newest first, with
    only the columns a run's health reads (HEALTH_COLUMNS, as stored): what `ls --json` and
    `alerts` evaluate of each run, read as latest_episodes reads them."""
    columns = [
        as_stored(metric_column(schema, name), String)
        if name == "created_at"
        else metric_column(schema, name)
        for name in HEALTH_COLUMNS
    ]
    return compiled(
        select_columns(*columns)
        .where(col(Episode.id) <= number("upto"), Episode.experiment_id == bindparam("exp_id"))
        .order_by(col(Episode.id).desc())
        .limit(number("limit"))
    )


@cache
def sampled(schema: Schema) -> Prepared:
    """The episodes of experiment `:exp_id` found first at or after each of `:points` ids
    evenly spread from `:first` to `:last` (`episode_columns`, oldest first, each once): one
    index seek each, so a sparkline or a first look at a run of millions of episodes costs what
    one of a hundred does."""
    steps = select(literal(0).label("i")).cte("sample_steps", recursive=True)
    steps = steps.union_all(select(steps.c.i + 1).where(steps.c.i < number("points") - 1))
    span = number("last") - number("first")
    position = number("first") + steps.c.i * span // func.max(number("points") - 1, 1)
    pick = (
        select(Episode.id)
        .where(Episode.experiment_id == bindparam("exp_id"), col(Episode.id) >= position)
        .order_by(col(Episode.id))
        .limit(1)
        .scalar_subquery()
    )
    picks = select(pick.label("pick")).select_from(steps).cte("sample_picks")
    return compiled(
        select_columns(*episode_columns(schema))
        .where(col(Episode.id).in_(select(picks.c.pick)), col(Episode.id) <= number("last"))
        .order_by(col(Episode.id))
    )


# -- aggregates --------------------------------------------------------------------------------


def finite_row(schema: Schema) -> ColumnElement[bool]:
    """True for the rows EpisodeRow.has_nonfinite does not flag: every metric but the length
    (the reward, its moving average and std, the losses) a finite number, entropy_loss NULL
    allowed. Anything else, NULL included, makes it NULL or false."""
    metrics = [name for name in EPISODE_METRICS if name not in ("length", "entropy_loss")]
    fine = [finite(getattr(Episode, name)) for name in metrics]
    if schema.has_entropy:
        entropy = col(Episode.entropy_loss)
        fine.append(or_(entropy.is_(None), finite(entropy)))
    return and_(*fine)


def _aggregate_columns(schema: Schema) -> list[Any]:
    """Rows, best finite reward, and rows with inf/NaN/text in a number column."""
    return [
        func.count(),
        func.max(finite_or_null(Episode.reward)),
        func.sum(case((finite_row(schema), 0), else_=1)),
    ]


@cache
def aggregate_experiments(schema: Schema) -> Prepared:
    """(experiment id, rows, best, non-finite) of every experiment id from `:low` to `:high`,
    rows up to id `:upto`. `id + 0` keeps SQLite on the experiment_id index (not a rowid
    scan)."""
    return compiled(
        select_columns(Episode.experiment_id, *_aggregate_columns(schema))
        .where(
            col(Episode.experiment_id).between(bindparam("low"), bindparam("high")),
            col(Episode.id) + 0 <= number("upto"),
        )
        .group_by(col(Episode.experiment_id))
    )


@cache
def aggregate_range(schema: Schema) -> Prepared:
    """(rows, best, non-finite) of experiment `:exp_id`'s rows with ids `:low` to `:high`."""
    return compiled(
        select_columns(*_aggregate_columns(schema)).where(
            Episode.experiment_id == bindparam("exp_id"),
            col(Episode.id) >= number("low"),
            col(Episode.id) <= number("high"),
        )
    )


# -- series ------------------------------------------------------------------------------------


@cache
def series_buckets(schema: Schema) -> Prepared:
    """Experiment `:exp_id`'s rows with ids in (`:low`, `:high`], grouped into buckets of
    `:width` ids from `:base`: per bucket its number, lowest and highest episode numbers, rows,
    latest time, and for every metric the total, count, min and max of its finite values."""
    values = [finite_or_null(metric_column(schema, name)) for name in EPISODE_METRICS]
    bucket = ((col(Episode.id) - number("base")) // number("width")).label("bucket")
    return compiled(
        select_columns(
            bucket,
            func.min(Episode.episode_num),
            func.max(Episode.episode_num),
            func.count(),
            as_stored(func.max(Episode.created_at), String),
            *[func.total(v) for v in values],
            *[func.count(v) for v in values],
            *[func.min(v) for v in values],
            *[func.max(v) for v in values],
        )
        .where(
            Episode.experiment_id == bindparam("exp_id"),
            col(Episode.id) > number("low"),
            col(Episode.id) <= number("high"),
        )
        .group_by(bucket)
        .order_by(bucket)
    )


# -- every statement, compiled ahead of time ---------------------------------------------------

SCHEMAS = (Schema(has_entropy=True), Schema(has_entropy=False))
BY_SCHEMA = (
    experiment_edges,
    experiment_episodes,
    new_episodes,
    latest_health,
    sampled,
    aggregate_experiments,
    aggregate_range,
    series_buckets,
)


def schema_tag(schema: Schema) -> str:
    """How a statement's name says which schema it is for: velora 0.1.1's has no entropy."""
    return "" if schema.has_entropy else "_0_1_1"


def every_statement() -> dict[str, Prepared]:
    """Every statement the reader runs, by the name it has in compiled_sql.py."""
    found = {
        "MAX_EPISODE_ID": max_episode_id(),
        "EXPERIMENTS_AFTER": experiments_after(),
        "CONFIGS_AFTER": configs_after(),
        "CONFIG_OF": config_of(),
        "FIRST_REACHING": first_reaching(),
    }
    for schema in SCHEMAS:
        tag = schema_tag(schema)
        for build in BY_SCHEMA:
            found[build.__name__.upper() + tag] = build(schema)
        found["LATEST_EPISODES" + tag] = latest_episodes(schema, one_experiment=False)
        found["LATEST_EPISODES_OF_ONE" + tag] = latest_episodes(schema, one_experiment=True)
    return found


def compiled_sql() -> str:
    """The source of compiled_sql.py."""
    lines = [
        "# ruff: noqa: E501",
        '"""Generated by `make sql` from velora_tui/data/queries.py: do not edit.',
        "",
        "Every statement the reader runs, compiled ahead of time, so that reading never imports",
        "SQLAlchemy (statements.py picks them; queries.py says why).",
        '"""',
        "",
    ]
    lines += ["from velora_tui.data.connection import Prepared", ""]
    for name, prepared in every_statement().items():
        pieces = "\n".join(f"        {line!r}" for line in prepared.sql.splitlines(keepends=True))
        lines += [
            f"{name} = Prepared(\n    (\n{pieces}\n    ),\n    {prepared.constants!r},\n)",
            "",
        ]
    return "\n".join(lines)


def write_compiled_sql() -> Path:
    target = Path(__file__).with_name("compiled_sql.py")
    target.write_text(compiled_sql(), encoding="utf-8")
    return target
