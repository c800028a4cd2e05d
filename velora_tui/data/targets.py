"""Each env's target: the mean episode reward at which the task counts as solved.

The figures are Gymnasium's published `reward_threshold` values, as its registry
(`gymnasium/envs/__init__.py`, read from Gymnasium 1.4.0 and, for ids it has since retired, from
0.29.1) registers them; an env registered without one (Pendulum, Walker2d, Humanoid, Blackjack,
CliffWalking) has no target here. Gymnasium's definition of solved is an average of 100
consecutive episodes at or above the threshold; velora's `reward_moving_avg` is that average when
its window is 100 (see docs/health.md).

The user's own targets (settings' `[targets]`, `--target ENV=VALUE`) win over these.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

SOURCE = "Gymnasium's registry (gymnasium/envs/__init__.py, reward_threshold), 0.29.1 and 1.4.0"

GYMNASIUM_THRESHOLDS: Mapping[str, float] = {
    # Classic control
    "CartPole-v0": 195.0,
    "CartPole-v1": 475.0,
    "MountainCar-v0": -110.0,
    "MountainCarContinuous-v0": 90.0,
    "Acrobot-v1": -100.0,
    # Box2D
    "LunarLander-v2": 200.0,
    "LunarLander-v3": 200.0,
    "LunarLanderContinuous-v2": 200.0,
    "LunarLanderContinuous-v3": 200.0,
    "BipedalWalker-v3": 300.0,
    "BipedalWalkerHardcore-v3": 300.0,
    "CarRacing-v2": 900.0,
    "CarRacing-v3": 900.0,
    # Toy text
    "FrozenLake-v1": 0.70,
    "FrozenLake8x8-v1": 0.85,
    "Taxi-v3": 8.0,
    "Taxi-v4": 8.0,
    # MuJoCo
    "Reacher-v2": -3.75,
    "Reacher-v4": -3.75,
    "Reacher-v5": -3.75,
    "Pusher-v2": 0.0,
    "Pusher-v4": 0.0,
    "Pusher-v5": 0.0,
    "InvertedPendulum-v2": 950.0,
    "InvertedPendulum-v4": 950.0,
    "InvertedPendulum-v5": 950.0,
    "InvertedDoublePendulum-v2": 9100.0,
    "InvertedDoublePendulum-v4": 9100.0,
    "InvertedDoublePendulum-v5": 9100.0,
    "HalfCheetah-v2": 4800.0,
    "HalfCheetah-v3": 4800.0,
    "HalfCheetah-v4": 4800.0,
    "HalfCheetah-v5": 4800.0,
    "Hopper-v2": 3800.0,
    "Hopper-v3": 3800.0,
    "Hopper-v4": 3800.0,
    "Hopper-v5": 3800.0,
    "Swimmer-v2": 360.0,
    "Swimmer-v3": 360.0,
    "Swimmer-v4": 360.0,
    "Swimmer-v5": 360.0,
    "Ant-v2": 6000.0,
    "Ant-v3": 6000.0,
    "Ant-v4": 6000.0,
    "Ant-v5": 6000.0,
}

# Gymnasium's "solved" is an average of 100 episodes at the threshold, and velora's moving
# average is one only once its window is full (before, it includes the window's zero padding:
# with a negative target such as Acrobot's -100 the padding alone would reach it). A run
# reaches its target from its 100th episode on (the health rules' `window` too).
SOLVED_WINDOW = 100

_VERSION = re.compile(r"-v\d+$")


def base_name(env: str) -> str:
    """An env id without its version suffix: `CartPole-v1` -> `CartPole`."""
    return _VERSION.sub("", env.strip())


def _by_name(table: Mapping[str, float]) -> dict[str, float | None]:
    """Each name's threshold where all its known versions agree; None where they do not
    (CartPole: v0 195, v1 475), so an unknown version never borrows a wrong bar."""
    names: dict[str, float | None] = {}
    for env, value in table.items():
        name = base_name(env)
        if name in names and names[name] != value:
            names[name] = None
        else:
            names.setdefault(name, value)
    return names


_GYMNASIUM_BY_NAME = _by_name(GYMNASIUM_THRESHOLDS)


def _usable(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def target_for(env: str, overrides: Mapping[str, float] | None = None) -> float | None:
    """The target of `env`: the user's override, else Gymnasium's threshold, else None.

    Lookup order: the exact id in `overrides`, the exact id in Gymnasium's table, then the same
    name with any version (`Hopper-v6`, or velora 0.1.1's bare `Hopper`): first among the
    overrides, then Gymnasium's where every version agrees. A non-finite override is ignored.
    """
    if not isinstance(env, str) or not env.strip():
        return None
    env = env.strip()
    user = overrides or {}
    exact = _usable(user.get(env))
    if exact is not None:
        return exact
    if env in GYMNASIUM_THRESHOLDS:
        return GYMNASIUM_THRESHOLDS[env]
    name = base_name(env)
    for key, value in user.items():
        if isinstance(key, str) and base_name(key) == name:
            usable = _usable(value)
            if usable is not None:
                return usable
    return _GYMNASIUM_BY_NAME.get(name)
