"""velora_tui.data.diff (two configs key by key) and the `velora-tui diff` command."""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import Result, run_cli, strict_json
from tests.support.configs import kinds
from tests.support.databases import RunSpec, build_velora_db, execute, hostile_db
from tests.support.folders import assert_unchanged
from velora_tui.data.config import flatten
from velora_tui.data.diff import diff_configs

# -- diff_configs --------------------------------------------------------------------------------


# -- format_value --------------------------------------------------------------------------------


# -- the command line ----------------------------------------------------------------------------

CHANGED_CONFIG_SQL = "UPDATE experiment SET config = ? WHERE id = ?"


@dataclass(frozen=True, slots=True)
class Runs:
    db: Path
    left_config: dict[str, Any]
    results: dict[str, Result]

    def __getitem__(self, name: str) -> Result:
        return self.results[name]


def _config_of(db: Path, exp_id: int) -> dict[str, Any]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        (text,) = conn.execute("SELECT config FROM experiment WHERE id = ?", (exp_id,)).fetchone()
    finally:
        conn.close()
    data: dict[str, Any] = json.loads(text)
    return data


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    """One database with experiments 1 and 2 (2: 1's config, edited) and 3 (a broken config),
    a folder where id 1 is in two databases, and the hostile file; every command runs once,
    concurrently, and every folder must be unchanged afterwards."""
    db = tmp_path_factory.mktemp("diff") / "metrics.db"
    build_velora_db(db, [RunSpec(planned=5), RunSpec(planned=5), RunSpec(planned=3)])
    left = _config_of(db, 1)
    right = json.loads(json.dumps(left))
    right["train_params"]["batch_size"] = 128
    del right["torch"]["loss"]
    right["notes"] = "bigger batch"
    execute(db, CHANGED_CONFIG_SQL, (json.dumps(right), 2))
    execute(db, CHANGED_CONFIG_SQL, ("{not json", 3))
    several = tmp_path_factory.mktemp("several")
    build_velora_db(several / "a" / "metrics.db", [3, 3])
    build_velora_db(several / "b" / "metrics.db", [3])
    hostile = hostile_db(tmp_path_factory.mktemp("hostile") / "metrics.db")
    commands: dict[str, list[str | Path]] = {
        "default": ["diff", "1", "2", db],
        "all": ["diff", "1", "2", db, "--all"],
        "json": ["diff", "1", "2", db, "--json"],
        "json-all": ["diff", "--all", "--json", "1", "2", db],
        "same": ["diff", "1", "1", db],
        "same-json": ["diff", "1", "1", db, "--json"],
        "broken": ["diff", "1", "3", db, "--json"],
        "unknown": ["diff", "1", "9", db],
        "unknown-left": ["diff", "9", "1", db, "--json"],
        "ambiguous": ["diff", "1", "2", several],
        "hostile": ["diff", "2", "1", hostile],
        "usage": ["diff", "1", db],
    }
    folders = [db.parent, several, hostile.parent]
    with contextlib.ExitStack() as stack:
        for folder in folders:
            stack.enter_context(assert_unchanged(folder))
        with ThreadPoolExecutor(max_workers=(os.cpu_count() or 2) + 1) as pool:
            futures = {name: pool.submit(run_cli, *args) for name, args in commands.items()}
            results = {name: future.result() for name, future in futures.items()}
    return Runs(db, left, results)


EXPECTED: list[dict[str, Any]] = [
    {"key": "torch.loss", "left": "MSELoss", "right": None, "kind": "removed"},
    {"key": "train_params.batch_size", "left": 64, "right": 128, "kind": "changed"},
    {"key": "notes", "left": None, "right": "bigger batch", "kind": "added"},
]


def test_default_shows_only_the_differences(runs: Runs) -> None:
    result = runs["default"]
    assert result.code == 0, result.err
    assert result.err == ""
    header, *rows = result.lines
    assert re.split(r"\s{2,}", header) == [
        "KEY",
        "#1 NeuroFlow · CartPole-v1",
        "#2 NeuroFlowCT · InvertedPendulum-v5",
    ]
    assert [line.split() for line in rows] == [
        ["torch.loss", '"MSELoss"', "-"],
        ["train_params.batch_size", "64", "128", "~"],
        ["notes", '"bigger', 'batch"', "+"],
    ]
    # aligned columns: values start under their headers, markers line up
    left_at, right_at = header.index("#1 "), header.index("#2 ")
    assert rows[0][left_at:].startswith('"MSELoss"')
    assert rows[1][left_at:].startswith("64 ")
    assert rows[1][right_at:].startswith("128 ")
    assert rows[2][left_at:right_at].strip() == ""
    assert rows[2][right_at:].startswith('"bigger batch"')
    assert len({len(line) for line in rows}) == 1


def test_all_shows_every_key(runs: Runs) -> None:
    result = runs["all"]
    assert result.code == 0, result.err
    rows = result.lines[1:]
    keys = [line.split()[0] for line in rows]
    assert keys == [*flatten(runs.left_config), "notes"]
    marked = [line.split()[0] for line in rows if line.split()[-1] in {"~", "+", "-"}]
    assert marked == [row["key"] for row in EXPECTED]
    agent = next(line for line in rows if line.startswith("agent "))
    assert agent.split() == ["agent", '"NeuroFlow"', '"NeuroFlow"']


def test_json(runs: Runs) -> None:
    result = runs["json"]
    assert result.code == 0, result.err
    assert strict_json(result.out) == EXPECTED


def test_json_all(runs: Runs) -> None:
    data = strict_json(runs["json-all"].out)
    assert isinstance(data, list)
    assert all(set(row) == {"key", "left", "right", "kind"} for row in data)
    assert [row for row in data if row["kind"] != "same"] == EXPECTED
    assert len(data) == len(flatten(runs.left_config)) + 1
    same = {row["key"]: row["left"] for row in data if row["kind"] == "same"}
    assert same["env"] == "CartPole-v1"
    assert all(row["left"] == row["right"] for row in data if row["kind"] == "same")


def test_no_differences(runs: Runs) -> None:
    result = runs["same"]
    assert (result.code, result.out) == (0, "")
    assert result.err_lines == ["velora-tui: no differences"]
    assert strict_json(runs["same-json"].out) == []


def test_broken_config_is_diffed_as_empty(runs: Runs) -> None:
    result = runs["broken"]
    assert result.code == 0
    [line] = result.err_lines
    assert line.startswith("velora-tui: #3: config is not valid JSON")
    assert line.endswith("compared as empty")
    data = strict_json(result.out)
    assert [row["key"] for row in data] == list(flatten(runs.left_config))
    assert {row["kind"] for row in data} == {"removed"}


@pytest.mark.parametrize("name", ["unknown", "unknown-left"])
def test_unknown_id(runs: Runs, name: str) -> None:
    result = runs[name]
    assert result.code == 1
    assert result.out == ""
    assert result.err_lines == ["velora-tui: no experiment with id 9"]


def test_id_in_several_databases(runs: Runs) -> None:
    result = runs["ambiguous"]
    assert result.code == 1
    assert result.out == ""
    [line] = result.err_lines
    assert line.startswith("velora-tui: experiment 1 is in several databases (")
    assert line.endswith("name one SOURCE")


def test_hostile_file(runs: Runs) -> None:
    result = runs["hostile"]  # check_output already refused escape characters
    assert result.code == 0
    [line] = result.err_lines
    assert line.startswith("velora-tui: #2: config is not valid JSON")
    header, *rows = result.lines
    assert header.startswith("KEY")
    assert "#2 " in header
    assert all(line.split()[-1] == "+" for line in rows)


def test_usage(runs: Runs) -> None:
    result = runs["usage"]
    assert result.code == 2
    assert "Usage:" in result.err


# -- flattened keys are unambiguous ----------------------------------------------------------------


def test_keys_that_look_like_paths_are_not_confused_with_paths(tmp_path: Path) -> None:
    """A key holding the separator is quoted and a list's items are `[0]`:
    `{"a": {"b": 1}, "l": [5]}` and `{"a.b": 1, "l": {"0": 5}}` differ everywhere, and a
    config holding both `a.b` and `a: {b}` keeps both values."""
    left = {"a": {"b": 1}, "l": [5]}
    right = {"a.b": 1, "l": {"0": 5}}
    both = {"a.b": 1, "a": {"b": 2}}
    assert kinds(diff_configs(left, right)) == {
        "a.b": "removed",
        "l[0]": "removed",
        '"a.b"': "added",
        "l.0": "added",
    }
    assert flatten(both) == {'"a.b"': 1, "a.b": 2}
    db = build_velora_db(tmp_path / "metrics.db", [RunSpec(planned=3)] * 3)
    for exp_id, config in ((1, left), (2, right), (3, both)):
        execute(db, CHANGED_CONFIG_SQL, (json.dumps(config), exp_id))
    result = run_cli("diff", "1", "2", db, "--json")
    assert result.code == 0, result.err
    assert {row["key"]: row["kind"] for row in strict_json(result.out)} == {
        "a.b": "removed",
        "l[0]": "removed",
        '"a.b"': "added",
        "l.0": "added",
    }
    result = run_cli("diff", "3", "1", db, "--all", "--json")
    assert result.code == 0, result.err
    rows = {row["key"]: (row["left"], row["right"]) for row in strict_json(result.out)}
    assert rows['"a.b"'] == (1, None)
    assert rows["a.b"] == (2, 1)
