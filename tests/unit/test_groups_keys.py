"""Which runs group together, as docs/groups.md says: config values compared with their JSON
type (`128` and `"128"` differ), the experiment's own agent and env always part of the key
(a config's `agent` key does not stand in for it), and keys that look like paths are not
confused with paths. Checked through `ls --group`, the app's group list and its sweep table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from velora_tui.data.config import flatten
from velora_tui.data.groups import value_text
from velora_tui.data.records import ExperimentSummary


@pytest.mark.parametrize(
    "values",
    [[128, "128"], [True, "true"], [None, "null", "-"], ["nan", float("nan")], [[1], "[1]"]],
)
def test_value_texts_tell_types_apart(values: list[Any]) -> None:
    texts = [value_text(v) for v in values]
    assert len(set(texts)) == len(texts)
    assert value_text("CartPole-v1") == "CartPole-v1"  # a plain string as it is


def test_grouping_keys_of_hostile_configs_never_collide(tmp_path: Path) -> None:
    summary = ExperimentSummary(db=tmp_path / "m.db", id=1, agent="A", env="E", created_at=None)
    from velora_tui.data.groups import seed_key

    configs = [{"x": 1}, {"x": "1"}, {'"x"': 1}, {"x.y": 1}, {"x": {"y": 1}}, {"agent": "A"}]
    keys = [seed_key(summary, flatten(c)) for c in configs]
    assert len(set(keys)) == len(keys)


def test_a_config_naming_the_experiments_own_agent_and_env_adds_nothing(tmp_path: Path) -> None:
    """velora writes the agent and env into the config too: they do not come back, quoted, in
    every group's name; a config whose `agent` says something else still counts."""
    from velora_tui.data.groups import seed_key

    summary = ExperimentSummary(db=tmp_path / "m.db", id=1, agent="A", env="E", created_at=None)
    same = seed_key(summary, flatten({"agent": "A", "env": "E", "lr": 0.1}))
    assert same == seed_key(summary, flatten({"lr": 0.1}))
    assert not [key for key, _ in same if key.startswith('"')]
    other = seed_key(summary, flatten({"agent": "B", "lr": 0.1}))
    assert ('"agent"', "B") in other
