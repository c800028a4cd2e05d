"""Which runs group together, as docs/groups.md says: config values compared with their JSON
type (`128` and `"128"` differ), the experiment's own agent and env always part of the key
(a config's `agent` key does not stand in for it), and keys that look like paths are not
confused with paths. Checked through `ls --group`, the app's group list and its sweep table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.app import settle
from tests.support.cli import run_cli, strict_json
from tests.support.databases import RunSpec, build_velora_db, execute
from velora_tui.data.groups import is_seed_key, short_keys
from velora_tui.tui.app import Settings, make_app

BASE: dict[str, Any] = {"seed": 1, "train_params": {"n_episodes": 3, "batch_size": 128}}


def sweep_of(path: Path, runs: list[tuple[str, dict[str, Any]]]) -> Path:
    """One experiment per (agent, config)."""
    build_velora_db(path, [RunSpec(planned=3, agent=agent, env="E") for agent, _ in runs])
    for exp_id, (_, config) in enumerate(runs, start=1):
        execute(path, "UPDATE experiment SET config = ? WHERE id = ?", (json.dumps(config), exp_id))
    return path


def grouped(db: Path, *args: str) -> dict[str, list[int]]:
    result = run_cli("ls", db, "--group", "--json", *args)
    assert result.code == 0, result.err
    return {g["group"]: sorted(e["id"] for e in g["experiments"]) for g in strict_json(result.out)}


def with_batch(batch: Any, seed: int = 1, **more: Any) -> dict[str, Any]:
    params = {**BASE["train_params"], "batch_size": batch}
    return {**BASE, "seed": seed, "train_params": params, **more}


def test_a_number_and_its_text_are_different_values(tmp_path: Path) -> None:
    db = sweep_of(
        tmp_path / "metrics.db",
        [("A", with_batch(128)), ("A", with_batch("128")), ("A", with_batch(128, seed=2))],
    )
    assert grouped(db) == {"batch_size=128": [1, 3], 'batch_size="128"': [2]}
    groups = grouped(db, "--group-by", "train_params.batch_size")
    assert groups == {"batch_size=128": [1, 3], 'batch_size="128"': [2]}


def test_the_experiments_agent_is_part_of_the_key_whatever_the_config_says(
    tmp_path: Path,
) -> None:
    same = with_batch(64, agent="PPO", env="X")
    db = sweep_of(tmp_path / "metrics.db", [("A", same), ("B", same), ("A", same | {"seed": 5})])
    assert grouped(db) == {"agent=A": [1, 3], "agent=B": [2]}
    # When the config's own `agent` differs too, both are named, apart.
    other = with_batch(64, agent="SAC", env="X")
    db = sweep_of(tmp_path / "two" / "metrics.db", [("A", same), ("A", other)])
    assert set(grouped(db)) == {'"agent"=PPO', '"agent"=SAC'}


def test_keys_that_look_like_paths(tmp_path: Path) -> None:
    """`{"a.b": 1}` and `{"a": {"b": 1}}` are different configs; a key part *named* seed is a
    seed key, a key that only holds the word is not."""
    db = sweep_of(
        tmp_path / "metrics.db",
        [
            ("A", {"a.b": 1, "seed": 1}),
            ("A", {"a": {"b": 1}, "seed": 2}),
            ("A", {"a.b": 1, "seed": 3, "run.seed": 1}),
            ("A", {"a.b": 1, "seed": 4, "run.seed": 2}),
        ],
    )
    assert sorted(grouped(db).values()) == [[1], [2], [3], [4]]
    assert is_seed_key("env_params.seed")
    assert is_seed_key("seeds.seed[0]")
    assert is_seed_key("x.0.seed")
    assert not is_seed_key("seeds[0]")
    assert not is_seed_key('"run.seed"')
    assert not is_seed_key('"my.seed.x"')
    assert short_keys(['"agent"', "agent"]) == {'"agent"': '"agent"', "agent": "agent"}
    assert short_keys(['x."b.c"', "y"]) == {'x."b.c"': '"b.c"', "y": "y"}
    assert short_keys(["a.sizes[1]", "b"]) == {"a.sizes[1]": "sizes[1]", "b": "b"}


@pytest.mark.ui
async def test_the_app_groups_and_sweeps_the_same_way(tmp_path: Path) -> None:
    from velora_tui.tui.screens.sweep import SweepScreen
    from velora_tui.tui.widgets.group_table import GroupTable

    db = sweep_of(
        tmp_path / "metrics.db",
        [("A", with_batch(128)), ("A", with_batch("128")), ("B", with_batch(128))],
    )
    app = make_app([db], Settings(live=False))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app)
        await pilot.press("g")
        await settle(app)
        table = app.screen.query_one(GroupTable)
        assert sorted(g.label() for g in table.groups) == sorted(
            ["agent=A batch_size=128", 'agent=A batch_size="128"', "agent=B batch_size=128"]
        )
        await pilot.press("w")
        await settle(app)
        assert isinstance(app.screen, SweepScreen)
        assert len(app.screen.order) == 3
