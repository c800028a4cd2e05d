"""velora_tui.data.diff (two configs key by key) and the `velora-tui diff` command."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.configs import LEFT, RIGHT, kinds
from velora_tui.data.config import flatten
from velora_tui.data.diff import MARKERS, diff_configs, format_value


@pytest.mark.parametrize(
    ("left", "right"),
    [(1, 1.0), (1, True), (0, False), ("1", 1), (None, "null"), ({}, []), (None, 0)],
)
def test_values_are_compared_as_json(left: Any, right: Any) -> None:
    assert kinds(diff_configs({"x": left}, {"x": right})) == {"x": "changed"}


def test_nan_equals_nan() -> None:
    assert kinds(diff_configs({"x": math.nan}, {"x": math.nan})) == {"x": "same"}
    assert kinds(diff_configs({"x": math.nan}, {"x": 1.0})) == {"x": "changed"}


def test_empty_configs_have_no_keys() -> None:
    assert diff_configs({}, {}) == []
    assert kinds(diff_configs({}, {"a": 1, "b": {}})) == {"a": "added", "b": "added"}
    assert kinds(diff_configs({"a": 1}, {})) == {"a": "removed"}


@pytest.mark.parametrize(
    ("left", "right", "expected"),
    [
        ([1, 2], [1, 3, 4], {"[0]": "same", "[1]": "changed", "[2]": "added"}),
        (None, None, {"(root)": "same"}),
        (None, {"a": 1}, {"(root)": "removed", "a": "added"}),
        ("text", 5, {"(root)": "changed"}),
        ([], {}, {"(root)": "removed"}),
        ({"a": 1}, [1], {"a": "removed", "[0]": "added"}),
    ],
)
def test_configs_that_are_not_dicts(left: Any, right: Any, expected: dict[str, str]) -> None:
    assert kinds(diff_configs(left, right)) == expected


def test_to_json_is_strict() -> None:
    rows = diff_configs({"a": math.nan, "b": math.inf, "c": {}}, {"a": -math.inf, "d": [1]})
    data = [row.to_json() for row in rows]
    assert data == [
        {"key": "a", "left": "nan", "right": "-inf", "kind": "changed"},
        {"key": "b", "left": "inf", "right": None, "kind": "removed"},
        {"key": "c", "left": {}, "right": None, "kind": "removed"},
        {"key": "d[0]", "left": None, "right": 1, "kind": "added"},
    ]
    assert json.loads(json.dumps(data, allow_nan=False)) == data


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=20,
)


@settings(deadline=None)
@given(JSON, JSON)
def test_any_json_diffs(left: Any, right: Any) -> None:
    rows = diff_configs(left, right)
    keys = [r.key for r in rows]
    assert len(keys) == len(set(keys))
    flat_left = flatten(left) if left != {} else {}
    flat_right = flatten(right) if right != {} else {}
    assert set(keys) == set(flat_left) | set(flat_right)
    for row in rows:
        assert row.kind in MARKERS
        assert (row.kind == "removed") == (row.key not in flat_right)
        assert (row.kind == "added") == (row.key not in flat_left)
        assert "\x1b" not in format_value(row.left)
        json.dumps(row.to_json(), allow_nan=False)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (64, "64"),
        (0.99, "0.99"),
        ("CartPole-v1", '"CartPole-v1"'),
        ("64", '"64"'),
        (None, "null"),
        (True, "true"),
        ({}, "{}"),
        ([], "[]"),
        ([1, "a"], '[1, "a"]'),
        (math.nan, "NaN"),
        ("Pendel \u00fcber", '"Pendel \u00fcber"'),
    ],
)
def test_format_value(value: Any, text: str) -> None:
    assert format_value(value) == text


def test_format_value_is_short_and_safe() -> None:
    hostile = format_value("\x1b[31mred\x1b[0m\nline\x07" * 1000)
    assert "\x1b" not in hostile
    assert "\n" not in hostile
    assert "\x07" not in hostile
    assert len(hostile) <= 80
    assert hostile.endswith("\u2026")
    assert len(format_value("x" * 10_000_000, limit=30)) == 30
    assert format_value(object()).startswith('"<object object')


def test_kinds_and_order() -> None:
    rows = diff_configs(LEFT, RIGHT)
    assert [(r.key, r.left, r.right, r.kind) for r in rows] == [
        ("agent", "NeuroFlow", "NeuroFlow", "same"),
        ("seed", 64, None, "removed"),
        ("model.gamma", 0.99, 0.99, "same"),
        ("model.sizes[0]", 20, 20, "same"),
        ("model.sizes[1]", 64, 64, "same"),
        ("model.log_std", None, None, "removed"),
        ("train_params.batch_size", 64, 128, "changed"),
        ("train_params.n_episodes", 100, 100, "same"),
        ("train_params.warmup", None, 10, "added"),  # then right-only keys, in right's order
        ("model.sizes[2]", None, 64, "added"),
        ("notes", None, "bigger batch", "added"),
    ]
    assert [r.marker for r in rows if r.kind != "same"] == ["-", "-", "~", "+", "+", "+"]


def test_reversed_diff_swaps_added_and_removed() -> None:
    forward = kinds(diff_configs(LEFT, RIGHT))
    backward = kinds(diff_configs(RIGHT, LEFT))
    swap = {"added": "removed", "removed": "added", "same": "same", "changed": "changed"}
    assert backward == {key: swap[kind] for key, kind in forward.items()}


def test_identical_configs() -> None:
    rows = diff_configs(LEFT, json.loads(json.dumps(LEFT)))
    assert {r.kind for r in rows} == {"same"}
    assert [r.key for r in rows] == list(flatten(LEFT))


# -- flattened keys are unambiguous ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({"": 1}, '""'),
        ({"a": {"": 1}}, 'a.""'),
        ({"(root)": 1}, '"(root)"'),
        ({'say "hi"': 1}, '"say \\"hi\\""'),
        ({"x\u202ey": 1}, '"x\\u202ey"'),
        ({"12": {"3": [4]}}, "12.3[0]"),
        ({"l[0]": 1}, '"l[0]"'),
        ([[1]], "[0][0]"),
        ({"batch size": 1}, "batch size"),
        ({"café": {"n0": 1}}, "café.n0"),
    ],
)
def test_flattened_keys_are_quoted_only_where_needed(config: Any, key: str) -> None:
    assert list(flatten(config)) == [key]


# Keys made of the characters that could make two paths alike.
PATHLIKE = st.recursive(
    st.integers(0, 1),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(alphabet='a0."\\(', max_size=3), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(deadline=None, max_examples=300)
@given(PATHLIKE, PATHLIKE)
def test_different_configs_never_diff_as_the_same(left: Any, right: Any) -> None:
    """Unambiguous keys: configs whose diff has only `same` rows are equal (empty containers
    aside: they have no keys of their own to tell them apart)."""
    rows = diff_configs(left, right)
    if all(row.kind == "same" for row in rows) and rows:
        assert left == right
