"""The statements of queries.py: built with SQLModel, compiled once, and the first load's
compiled ahead of time."""

from __future__ import annotations

import sqlite3

from velora_tui.data import compiled_sql, queries, statements
from velora_tui.data.models import Episode, Experiment
from velora_tui.data.schema import REQUIRED_COLUMNS, Schema


def test_compiled_sql_is_current() -> None:
    """compiled_sql.py is what `make sql` writes from queries.py today, every statement."""
    expected = queries.every_statement()
    assert len(expected) == 25
    for name, prepared in expected.items():
        assert getattr(compiled_sql, name) == prepared, f"run `make sql`: {name} is stale"


def test_statements_are_the_builders_statements() -> None:
    """statements.py gives, for each builder of queries.py and each schema, what it builds."""
    for schema in queries.SCHEMAS:
        for build in queries.BY_SCHEMA:
            assert getattr(statements, build.__name__)(schema) == build(schema)
        for one in (False, True):
            assert statements.latest_episodes(schema, one) == queries.latest_episodes(schema, one)
    for name in ("max_episode_id", "experiments_after", "configs_after", "config_of"):
        assert getattr(statements, name)() == getattr(queries, name)()


def test_required_columns_are_the_models_columns() -> None:
    """schema.py names the columns it checks without importing the models: they must agree."""
    assert set(Experiment.__table__.columns.keys()) == REQUIRED_COLUMNS["experiment"]  # type: ignore[attr-defined]
    episode = set(Episode.__table__.columns.keys())  # type: ignore[attr-defined]
    assert episode - {"entropy_loss"} == REQUIRED_COLUMNS["episode"]


def test_every_statement_compiles_for_sqlite() -> None:
    """SQLite itself accepts each statement's SQL (prepared against velora's schema)."""
    conn = sqlite3.connect(":memory:")
    conn.executescript(
        "CREATE TABLE experiment (id INTEGER PRIMARY KEY, agent, env, config, created_at);"
        "CREATE TABLE episode (id INTEGER PRIMARY KEY, experiment_id, episode_num, reward,"
        " length, reward_moving_avg, reward_moving_std, actor_loss, critic_loss, entropy_loss,"
        " created_at);"
    )
    for schema in (Schema(has_entropy=True), Schema(has_entropy=False)):
        statements = [
            queries.max_episode_id(),
            queries.experiments_after(),
            queries.config_of(),
            queries.experiment_edges(schema),
            queries.experiment_episodes(schema),
            queries.new_episodes(schema),
            queries.latest_episodes(schema, one_experiment=True),
            queries.latest_episodes(schema, one_experiment=False),
            queries.latest_health(schema),
            queries.sampled(schema),
            queries.aggregate_experiments(schema),
            queries.aggregate_range(schema),
            queries.series_buckets(schema),
        ]
        params = dict.fromkeys(
            [
                "after",
                "upto",
                "limit",
                "exp_id",
                "first",
                "last",
                "points",
                "low",
                "high",
                "count",
                "recent",
            ],
            1,
        ) | {"base": 1, "width": 1}
        for prepared in statements:
            conn.execute(prepared.sql, prepared.parameters(params)).fetchall()
    conn.close()
