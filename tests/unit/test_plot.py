"""Chart pictures are made straight from plotext's character matrix: they must show exactly what
plotext's own ANSI output, read back by rich, showed."""

from __future__ import annotations

import itertools
import math
import re
from typing import Any, cast

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from rich.console import Console
from rich.text import Text
from textual.strip import Strip
from textual_plotext.plot import Plot

from velora_tui.tui.widgets import plot as plot_module
from velora_tui.tui.widgets.plot import Build, matrix_lines, round_ticks, tick_labels


def cells(strip: Strip) -> list[tuple[str, Any]]:
    """Each cell's character and style (segments may be cut differently, cells may not)."""
    return [(char, segment.style) for segment in strip for char in segment.text]


def figure(width: int, height: int, theme: str, title: str) -> Plot:
    plt = Plot()
    xs = list(range(200))
    plt.plot(xs, [math.sin(x / 9) * 50 for x in xs], marker="braille", color=(80, 160, 240))
    plt.scatter(xs[::7], [25.0] * len(xs[::7]), marker="braille", color=(110, 110, 130))
    plt.plot(xs, [x / 4 - 25 for x in xs], marker="braille", color="red", label="trend")
    plt.title(title)
    plt.xlabel("episode")
    plt.plotsize(width, height)
    plt._set_size(width, height)
    plt.theme(theme)
    return plt


@pytest.mark.parametrize(
    ("width", "height", "theme", "title"),
    [
        (120, 19, "textual-dark", "reward · smoothing 0.6"),
        (30, 14, "textual-light", "critic loss (log)"),
        (45, 6, "clear", "a title much longer than the chart is wide, cut by plotext"),
    ],
)
def test_matrix_lines_show_what_plotext_ansi_text_showed(
    width: int, height: int, theme: str, title: str
) -> None:
    plt = figure(width, height, theme, title)
    console = Console(width=width, color_system="truecolor", force_terminal=True)
    text = Text.from_ansi(plt.build(), no_wrap=True, end="")
    lines = console.render_lines(text, console.options.update(width=width), pad=True)
    expected = [Strip(line, width) for line in lines[:height]]

    figure_internals: Any = plt  # the matrix of the build just done
    shown = matrix_lines(figure_internals.monitor.matrix, width, height)

    assert len(shown) == len(expected) == height
    for got, want in zip(shown, expected, strict=True):
        assert got.cell_length == width
        assert cells(got) == cells(want)


# -- round y ticks ---------------------------------------------------------------------------


def is_round_step(step: float, size: float) -> bool:
    """1, 2 or 5 times a power of ten (to the precision of floats of `size`)."""
    power = math.floor(math.log10(step))
    mantissa = step / 10.0**power
    tolerance = max(1e-9, 1e-12 * size / step)
    return any(math.isclose(mantissa, nice, rel_tol=tolerance) for nice in (1, 2, 5, 10))


@given(
    st.floats(-1e12, 1e12, allow_nan=False),
    st.floats(1e-6, 1e12, allow_nan=False),
    st.integers(2, 7),
)
def test_y_ticks_are_round_steps_within_the_range(low: float, span: float, most: int) -> None:
    high = low + span
    assume(high > low)
    ticks, decimals = round_ticks(low, high, most)
    assert len(set(ticks)) == len(ticks)
    assume(span > 1e-9 * abs(low))  # a span the floats there can cut into steps
    ticks, decimals = round_ticks(low, high, most)
    assert 1 <= len(ticks) <= most + 1
    assert all(low <= tick <= high for tick in ticks)
    if len(ticks) >= 2:
        steps = [b - a for a, b in itertools.pairwise(ticks)]
        size = max(abs(low), abs(high))
        assert is_round_step(steps[0], size)
        assert all(math.isclose(s, steps[0], abs_tol=1e-12 * size) for s in steps)
    labels = tick_labels(ticks, decimals)
    assert len(set(labels)) == len(labels)  # never two ticks that read the same


@pytest.mark.parametrize(
    ("low", "high", "most", "expected"),
    [
        # The examples: plotext put its ticks at 63.9, 49.9, 35.8 and -0.97, -1.34, -1.71.
        (35.8, 63.9, 5, ["40", "45", "50", "55", "60"]),
        (-1.71, -0.97, 5, ["-1.6", "-1.4", "-1.2", "-1.0"]),
        (0, 500, 7, ["0", "100", "200", "300", "400", "500"]),
        (-0.3, 0.3, 7, ["-0.3", "-0.2", "-0.1", "0", "0.1", "0.2", "0.3"]),
        (-5, 5, 2, ["-5", "0", "5"]),  # two rather than one: one more than asked
        (9.5e9, 1.2e10, 5, ["1e+10", "1.1e+10", "1.2e+10"]),
    ],
)
def test_y_ticks_of_known_ranges(low: float, high: float, most: int, expected: list[str]) -> None:
    ticks, decimals = round_ticks(low, high, most)
    assert tick_labels(ticks, decimals) == expected


@pytest.mark.parametrize(
    ("low", "high"), [(math.nan, 1.0), (0.0, math.inf), (2.0, 1.0), (-1e308, 1e308)]
)
def test_y_ticks_of_odd_ranges_do_not_raise(low: float, high: float) -> None:
    ticks, _ = round_ticks(low, high, 5)
    assert all(math.isfinite(t) for t in ticks)


def y_labels(lines: list[Strip]) -> list[str]:
    """The labels left of the plot's frame, top to bottom."""
    return [m.group(1) for line in lines if (m := re.match(r"\s*(\S+)┤", line.text))]


def test_every_chart_built_gets_round_y_ticks() -> None:
    xs = [float(x) for x in range(200)]
    ys = [math.sin(x / 9) * 14 + 49.85 for x in xs]  # 35.85 to 63.85

    def paint(plt: Plot, width: int, state: object) -> None:
        plt.plot(xs, ys, marker="braille")
        plt.scatter(xs, [y + math.nan for y in ys])  # a series with nothing to show

    lines = Build(cast(Any, None), 0, (80, 24, "dark"), paint, None).picture()
    labels = y_labels(lines)
    assert labels == ["60", "55", "50", "45", "40"], labels


def test_log_axes_get_powers_of_ten() -> None:
    xs = [float(x) for x in range(1, 200)]

    def paint(plt: Plot, width: int, state: object) -> None:
        plt.plot(xs, [1e-3 * 1.05**x for x in xs], marker="braille")
        plt.yscale("log")

    labels = y_labels(Build(cast(Any, None), 0, (80, 24, "dark"), paint, None).picture())
    assert labels == ["10", "1", "0.1", "0.01"], labels


def test_ticks_a_paint_sets_stay() -> None:
    def paint(plt: Plot, width: int, state: object) -> None:
        plt.plot([0.0, 1.0], [0.0, 10.0])
        plt.yticks([3.3, 6.6], ["a", "b"])

    labels = y_labels(Build(cast(Any, None), 0, (60, 20, "dark"), paint, None).picture())
    assert labels == ["b", "a"]


@pytest.mark.parametrize("height", [5, 6, 7, 8, 9, 10, 12])
def test_a_short_chart_never_puts_two_y_labels_on_one_row(height: int) -> None:
    """Episode length at 80x24: ticks 20, 40 and 60 on three rows of canvas put 40 and 60 on
    one row, and which label showed changed from build to build."""
    xs = [float(x) for x in range(60)]

    def paint(plt: Plot, width: int, state: object) -> None:
        plt.plot(xs, [9.0 + x for x in xs], marker="braille")
        plt.title("episode length")

    lines = Build(cast(Any, None), 0, (30, height, "dark"), paint, None).picture()
    ticks = cast(Any, plot_module._FIGURE).monitor.yticks[0]  # those of the build just done
    labels = y_labels(lines)
    assert len(labels) == len(ticks) >= 1  # each tick's label shows: none drawn over another
    assert len(set(labels)) == len(labels)
