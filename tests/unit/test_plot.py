"""Chart pictures are made straight from plotext's character matrix: they must show exactly what
plotext's own ANSI output, read back by rich, showed."""

from __future__ import annotations

import math
from typing import Any

import pytest
from rich.console import Console
from rich.text import Text
from textual.strip import Strip
from textual_plotext.plot import Plot

from velora_tui.tui.widgets.plot import matrix_lines


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
