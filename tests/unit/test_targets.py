"""Env targets: Gymnasium's published thresholds, the user's overrides, and the fallback."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from velora_tui.data.targets import GYMNASIUM_THRESHOLDS, SOURCE, base_name, target_for


@pytest.mark.parametrize(
    ("env", "target"),
    [
        ("CartPole-v0", 195.0),
        ("CartPole-v1", 475.0),
        ("LunarLander-v2", 200.0),
        ("LunarLander-v3", 200.0),
        ("Acrobot-v1", -100.0),
        ("MountainCar-v0", -110.0),
        ("MountainCarContinuous-v0", 90.0),
        ("InvertedPendulum-v4", 950.0),
        ("InvertedPendulum-v5", 950.0),
        ("InvertedDoublePendulum-v5", 9100.0),
        ("BipedalWalker-v3", 300.0),
        ("Hopper-v5", 3800.0),
        ("HalfCheetah-v5", 4800.0),
        ("Ant-v5", 6000.0),
        ("Swimmer-v5", 360.0),
        ("Reacher-v5", -3.75),
        ("FrozenLake-v1", 0.70),
        ("Taxi-v3", 8.0),
        ("CarRacing-v3", 900.0),
    ],
)
def test_gymnasium_published_thresholds(env: str, target: float) -> None:
    assert target_for(env) == target


@pytest.mark.parametrize("env", ["Pendulum-v1", "Pendulum", "Walker2d-v5", "Humanoid-v5", ""])
def test_envs_without_a_threshold_have_no_target(env: str) -> None:
    assert target_for(env) is None


def test_the_source_is_named() -> None:
    assert "Gymnasium" in SOURCE
    assert "reward_threshold" in SOURCE


def test_overrides_win_over_gymnasium() -> None:
    assert target_for("CartPole-v1", {"CartPole-v1": 480.0}) == 480.0
    assert target_for("MyEnv-v0", {"MyEnv-v0": 12.5}) == 12.5
    assert target_for("CartPole-v1", {"Other-v0": 1.0}) == 475.0


def test_same_name_any_version_fallback() -> None:
    # All Hopper versions agree: a new version and velora 0.1.1's bare name borrow the bar.
    assert target_for("Hopper-v9") == 3800.0
    assert target_for("Hopper") == 3800.0
    # CartPole's versions disagree (195, 475): an unknown version gets none rather than a wrong one.
    assert target_for("CartPole-v7") is None
    assert target_for("CartPole") is None
    # The user's own target for any version of a name applies to the others without their own.
    assert target_for("MyEnv-v3", {"MyEnv-v1": 5.0}) == 5.0
    assert target_for("CartPole", {"CartPole-v1": 480.0}) == 480.0


def test_unusable_overrides_are_ignored() -> None:
    bad = {"CartPole-v1": math.nan, "Hopper-v5": math.inf, "Ant-v5": True}
    assert target_for("CartPole-v1", bad) == 475.0
    assert target_for("Hopper-v5", bad) == 3800.0
    assert target_for("Ant-v5", bad) == 6000.0


def test_table_values_are_finite_and_names_strip_versions() -> None:
    assert all(math.isfinite(v) for v in GYMNASIUM_THRESHOLDS.values())
    assert base_name("LunarLander-v3") == "LunarLander"
    assert base_name("Pendulum") == "Pendulum"


@given(st.text(max_size=40), st.dictionaries(st.text(max_size=20), st.floats(), max_size=5))
def test_any_name_and_overrides_never_crash(env: str, overrides: dict[str, float]) -> None:
    result = target_for(env, overrides)
    assert result is None or math.isfinite(result)
