"""velora_tui.data.config: an experiment's untrusted `config` text."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support.databases import VELORA_FILES
from velora_tui.data.config import (
    ConfigView,
    flatten,
    parse_config,
    planned_episodes,
    planned_from_text,
)


@pytest.fixture
def real_config() -> str:
    """One real `experiment.config` value written by velora 0.2.0."""
    return json.dumps(json.loads((VELORA_FILES / "sample-config.json").read_text()))


def test_valid_config(real_config: str) -> None:
    view = parse_config(real_config)
    assert view.ok
    assert view.error is None
    assert isinstance(view.data, dict)
    assert view.data["train_params"]["n_episodes"] == planned_episodes(view.data)
    assert json.loads(view.pretty()) == view.data
    assert "\n" in view.pretty()


def test_valid_config_bytes() -> None:
    view = parse_config(b'{"a": 1}')
    assert view.ok
    assert view.data == {"a": 1}


@pytest.mark.parametrize(
    "raw",
    ['{"agent": "NeuroFlow",', "{'single': 'quotes'}", "not json", "{}}", "[1, 2", "\x00"],
)
def test_malformed_config(raw: str) -> None:
    view = parse_config(raw)
    assert not view.ok
    assert view.error is not None
    assert view.error.startswith("config is not valid JSON")
    assert view.data is None
    assert view.pretty() == view.text


@pytest.mark.parametrize("raw", ["", "   ", "\n\t"])
def test_empty_config(raw: str) -> None:
    view = parse_config(raw)
    assert not view.ok
    assert view.error == "config is empty"


@pytest.mark.parametrize(("raw", "kind"), [(None, "NoneType"), (42, "int"), (1.5, "float")])
def test_config_that_is_not_text(raw: object, kind: str) -> None:
    view = parse_config(raw)
    assert not view.ok
    assert view.error == f"config is not text ({kind})"
    assert view.text == ("" if raw is None else str(raw))


@pytest.mark.parametrize(("raw", "data"), [("null", None), ("[1, 2, 3]", [1, 2, 3]), ("7", 7)])
def test_json_that_is_not_an_object(raw: str, data: Any) -> None:
    view = parse_config(raw)
    assert view.ok
    assert view.data == data
    assert planned_episodes(view.data) is None
    assert planned_from_text(raw) is None


def test_huge_config_10_mb() -> None:
    config = {
        "train_params": {"n_episodes": 500},
        "blob": "x" * (10 * 1024 * 1024),
        "many": list(range(1000)),
    }
    raw = json.dumps(config)
    assert len(raw) > 10 * 1024 * 1024
    view = parse_config(raw)
    assert view.ok
    assert planned_episodes(view.data) == 500
    assert planned_from_text(raw) == 500


def test_huge_malformed_config() -> None:
    raw = '{"train_params": {"n_episodes": 5}, "blob": "' + "x" * (10 * 1024 * 1024)
    view = parse_config(raw)
    assert not view.ok
    assert planned_from_text(raw) is None


@pytest.mark.parametrize("depth", [5000, 100_000])
def test_deeply_nested_config_is_an_error_not_a_crash(depth: int) -> None:
    for raw in ("[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth):
        view = parse_config(raw)
        assert not view.ok
        assert view.error is not None
        assert "nested too deeply" in view.error
        assert view.pretty() == view.text


def test_deeply_nested_n_episodes_is_not_planned() -> None:
    raw = '{"train_params": {"n_episodes": ' + "[" * 5000 + "]" * 5000 + "}}"
    assert planned_from_text(raw) is None


def test_nested_at_the_parse_limit_still_pretty_prints() -> None:
    # Whatever depth json.loads accepts, pretty() (json.dumps) must handle too.
    depth = 900
    view = parse_config("[" * depth + "]" * depth)
    if view.ok:
        assert view.pretty().count("[") == depth


def test_config_text_is_cleaned_for_the_terminal() -> None:
    raw = '{"agent": "\\u001b[31mred", "x": 1}\x1b[2J'
    view = parse_config(raw)
    assert not view.ok  # trailing escape sequence text after the object
    assert "\x1b" not in view.text
    view = parse_config('{"agent": "\\u001b[31mred\\u0007"}')
    assert view.ok
    assert "\x1b" not in view.pretty()
    assert "\x07" not in view.pretty()


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"train_params": {"n_episodes": 120}}, 120),
        ({"train_params": {"n_episodes": "300"}}, 300),
        ({"train_params": {"n_episodes": 300.0}}, 300),
        ({"train_params": {"n_episodes": 0}}, None),
        ({"train_params": {"n_episodes": -5}}, None),
        ({"train_params": {"n_episodes": 2.5}}, None),
        ({"train_params": {"n_episodes": None}}, None),
        ({"train_params": {"n_episodes": "many"}}, None),
        ({"train_params": {"n_episodes": [120]}}, None),
        ({"train_params": {"n_episodes": True}}, 1),
        ({"train_params": {}}, None),
        ({"train_params": None}, None),
        ({"train_params": [1]}, None),
        ({"env": "Pendulum"}, None),  # velora 0.1.1's shape: no train_params
        ([], None),
        (None, None),
        ("n_episodes", None),
    ],
)
def test_planned_episodes(data: Any, expected: int | None) -> None:
    assert planned_episodes(data) == expected


def test_planned_from_text_skips_text_without_the_key() -> None:
    assert planned_from_text('{"train_params": {"n_episodes": 40}}') == 40
    assert planned_from_text('{"train_params": {"batch_size": 64}}') is None
    assert planned_from_text(None) is None
    assert planned_from_text(b'{"train_params": {"n_episodes": 40}}') is None


def test_flatten_dotted_keys(real_config: str) -> None:
    view = parse_config(real_config)
    flat = flatten(view.data)
    assert flat["train_params.n_episodes"] == view.data["train_params"]["n_episodes"]
    assert flat["train_params.batch_size"] == view.data["train_params"]["batch_size"]
    assert all(not isinstance(v, dict) or not v for v in flat.values())
    assert flatten({"a": {"b": [1, {"c": 2}], "d": {}}, "e": []}) == {
        "a.b[0]": 1,
        "a.b[1].c": 2,
        "a.d": {},
        "e": [],
    }


def test_flatten_keeps_order() -> None:
    assert list(flatten({"z": 1, "a": {"y": 2, "b": 3}, "m": 4})) == ["z", "a.y", "a.b", "m"]


def test_flatten_scalars_and_prefix() -> None:
    assert flatten(5) == {"(root)": 5}
    assert flatten(None) == {"(root)": None}
    assert flatten({"a": 1}, prefix="cfg") == {"cfg.a": 1}


def test_flatten_deep_and_wide_without_recursion() -> None:
    deep: Any = 1
    for _ in range(5000):
        deep = {"k": deep}
    flat = flatten(deep)
    assert flat == {".".join(["k"] * 5000): 1}
    wide = {str(i): i for i in range(50_000)}
    assert len(flatten(wide)) == 20_000
    assert len(flatten(wide, limit=10)) == 10


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=30,
)


@given(st.text())
def test_parse_config_never_raises(raw: str) -> None:
    view = parse_config(raw)
    assert isinstance(view, ConfigView)
    assert "\x1b" not in view.pretty()


@given(_JSON)
def test_parse_config_round_trips_json(data: Any) -> None:
    view = parse_config(json.dumps(data))
    assert view.ok
    assert view.data == data
    flat = flatten(view.data)
    assert isinstance(flat, dict)
    assert flat
