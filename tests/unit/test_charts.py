"""Chart axes: episode and environment-step axes are counts, ticked at whole numbers."""

from __future__ import annotations

import itertools
import math
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.text import Text
from textual_plotext.plot import Plot

from velora_tui.data.records import EPISODE_METRICS
from velora_tui.data.series import Band, Series
from velora_tui.tui.screens.compare import CompareChart
from velora_tui.tui.widgets.charts import (
    REWARD,
    ChartOptions,
    MetricChart,
    MetricState,
    integer_ticks,
)

pytestmark = pytest.mark.ui


@given(
    st.floats(-1e7, 1e7, allow_nan=False),
    st.floats(0, 1e7, allow_nan=False),
    st.integers(4, 8),
)
def test_integer_ticks_are_round_whole_numbers_within_the_range(
    low: float, span: float, most: int
) -> None:
    high = low + span
    ticks = integer_ticks(low, high, most)
    assert all(isinstance(tick, int) for tick in ticks)
    assert all(low <= tick <= high for tick in ticks)
    assert len(ticks) <= most
    if math.floor(high) - math.ceil(low) >= 1:
        assert len(ticks) >= 2
        steps = {b - a for a, b in itertools.pairwise(ticks)}
        assert len(steps) == 1  # evenly spaced
        (step,) = steps
        assert all(tick % step == 0 for tick in ticks)  # on multiples of the step


def run(episodes: int) -> Series:
    xs = [float(x) for x in range(1, episodes + 1)]
    series = Series(episode=xs, steps=[37.0 * x for x in xs], seconds=xs, rows=episodes)
    for metric in EPISODE_METRICS:
        values = [math.sin(x / 9) * 50 + x for x in xs]
        series.bands[metric] = Band(values, values, values)
    return series


def x_tick_labels(plt: Plot, width: int = 60, height: int = 16) -> list[str]:
    """The labels under the plot's frame."""
    plt.plotsize(width, height)
    lines = Text.from_ansi(plt.build()).plain.splitlines()
    bottom = max(i for i, line in enumerate(lines) if "└" in line)
    return re.findall(r"-?[\d.]+", lines[bottom + 1])


@pytest.mark.parametrize(("x_axis", "expected"), [("episode", "25 50 75 100"), ("steps", None)])
def test_episode_and_step_axes_have_whole_number_ticks(x_axis: str, expected: str | None) -> None:
    """120 episodes: plotext's own ticks were 1, 30.8, 60.5, 90.2, 120."""
    options = ChartOptions(x_axis=x_axis)
    one, several = Plot(), Plot()
    MetricChart.paint(one, 60, MetricState(REWARD, run(120), options))
    CompareChart.paint(several, 60, ([run(120), run(80)], options))
    for plt in (one, several):
        labels = x_tick_labels(plt)
        assert len(labels) >= 2
        assert all(label.lstrip("-").isdigit() for label in labels), labels
        if expected is not None:
            assert " ".join(labels) == expected


def chart_title(series: Series | None) -> str:
    plt = Plot()
    MetricChart.paint(plt, 60, MetricState(REWARD, series, ChartOptions()))
    plt.plotsize(60, 16)
    return Text.from_ansi(plt.build()).plain


@pytest.mark.parametrize(
    ("series", "note"),
    [
        (None, "reward: reading…"),  # nothing read yet: never "waiting for episodes"
        (Series(complete=False), "reward: reading…"),
        (Series(), "reward: waiting for episodes"),  # read, and none there
    ],
)
def test_a_chart_not_read_yet_says_so(series: Series | None, note: str) -> None:
    assert note in chart_title(series)
