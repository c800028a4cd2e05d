"""The reader's statements, as compiled ahead of time from queries.py (compiled_sql.py, written by
`make sql`): the same names and arguments as queries.py's builders, without SQLAlchemy, whose
import would cost every command half a second of its start (docs/performance.md)."""

from __future__ import annotations

from velora_tui.data import compiled_sql
from velora_tui.data.connection import Prepared
from velora_tui.data.schema import Schema


def _for(name: str, schema: Schema) -> Prepared:
    """Statement `name` in its version for `schema` (velora 0.1.1's has no entropy column)."""
    prepared: Prepared = getattr(compiled_sql, name + ("" if schema.has_entropy else "_0_1_1"))
    return prepared


def max_episode_id() -> Prepared:
    return compiled_sql.MAX_EPISODE_ID


def experiments_after() -> Prepared:
    return compiled_sql.EXPERIMENTS_AFTER


def configs_after() -> Prepared:
    return compiled_sql.CONFIGS_AFTER


def config_of() -> Prepared:
    return compiled_sql.CONFIG_OF


def first_reaching() -> Prepared:
    return compiled_sql.FIRST_REACHING


def experiment_edges(schema: Schema) -> Prepared:
    return _for("EXPERIMENT_EDGES", schema)


def experiment_episodes(schema: Schema) -> Prepared:
    return _for("EXPERIMENT_EPISODES", schema)


def new_episodes(schema: Schema) -> Prepared:
    return _for("NEW_EPISODES", schema)


def latest_episodes(schema: Schema, one_experiment: bool) -> Prepared:
    return _for("LATEST_EPISODES_OF_ONE" if one_experiment else "LATEST_EPISODES", schema)


def latest_health(schema: Schema) -> Prepared:
    return _for("LATEST_HEALTH", schema)


def sampled(schema: Schema) -> Prepared:
    return _for("SAMPLED", schema)


def aggregate_experiments(schema: Schema) -> Prepared:
    return _for("AGGREGATE_EXPERIMENTS", schema)


def aggregate_range(schema: Schema) -> Prepared:
    return _for("AGGREGATE_RANGE", schema)


def series_buckets(schema: Schema) -> Prepared:
    return _for("SERIES_BUCKETS", schema)
