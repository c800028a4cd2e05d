"""A textual-plotext chart whose plot is built in a worker thread.

Building a plot is slow pure Python. Built in `render()`, as PlotextPlot does, five charts
redrawn while a fast writer runs keep keys waiting. Here `draw()` starts a build in a thread and
the last finished picture stays on screen until the new one is ready. The picture is even cut
into screen lines there, so showing it costs the UI thread nothing.

The lines are made straight from plotext's character matrix: the ANSI text plotext would write
from it, and rich's parsing of that text back into styled segments, are work on the scale of the
plot itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from plotext import _utility as plotext_utility
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import on
from textual.message import Message
from textual.strip import Strip
from textual_plotext import PlotextPlot
from textual_plotext.plot import Plot

from velora_tui.tui.workers import ReportsWorkerFailures, read_worker, reply

# plotext keeps module-level state: one build at a time, all on one figure (cleared for each).
_BUILDING = threading.Lock()
_FIGURE = Plot()

# Describes a plot on a cleared figure, of `state`, `width` cells wide: a function of its
# arguments alone, as it runs in a build thread.
Paint = Callable[[Plot, int, Any], None]

PictureKey = tuple[int, int, str]  # width, height, plotext theme
ColorKey = tuple[Hashable, Hashable, Hashable]  # plotext's foreground, style, background

_styles: dict[ColorKey, Style] = {}
PLAIN = Style()


def _hashable(color: Any) -> Hashable:
    return tuple(color) if isinstance(color, list) else color


def _style(key: ColorKey) -> Style:
    """The rich style of one plotext colour triple: what its ANSI codes read back as."""
    style = _styles.get(key)
    if style is None:
        foreground, text_style, background = key
        codes = plotext_utility.colors_to_ansi(foreground, text_style, background)
        sample = Text.from_ansi(codes + "x")
        spans = [span.style for span in sample.spans if isinstance(span.style, Style)]
        style = _styles[key] = Style.combine([Style(), *spans])
    return style


def matrix_lines(matrix: Any, width: int, height: int) -> list[Strip]:
    """A built plotext matrix as `height` screen lines of `width` cells: one segment per run
    of cells of the same colours (plotext keeps row 0 at the bottom)."""
    lines: list[Strip] = []
    for row in range(matrix.rows - 1, max(matrix.rows - height, 0) - 1, -1):
        markers: Sequence[str] = matrix.marker[row]
        colors = list(
            zip(
                map(_hashable, matrix.fullground[row]),
                map(_hashable, matrix.style[row]),
                map(_hashable, matrix.background[row]),
                strict=True,
            )
        )
        segments: list[Segment] = []
        start = 0
        for col in range(1, len(colors) + 1):
            if col == len(colors) or colors[col] != colors[start]:
                segments.append(Segment("".join(markers[start:col]), _style(colors[start])))
                start = col
        # Padding with a style of its own: Textual's monochrome filter (NO_COLOR) needs one.
        lines.append(Strip(segments).adjust_cell_length(width, PLAIN))
    return lines


@dataclass(frozen=True, slots=True)
class Build:
    """One picture to build: for which chart, at which size and theme, painted how, of what
    `state`. Taken on the UI thread; built in any thread (`picture`, which touches no widget);
    shown on the UI thread (`show`)."""

    chart: ThreadedPlot
    generation: int
    key: PictureKey
    paint: Paint
    state: Any

    def picture(self) -> list[Strip]:
        width, height, theme = self.key
        with _BUILDING:
            plt = _FIGURE
            plt.clear_data()
            plt.clear_figure()
            self.paint(plt, width, self.state)
            plt.plotsize(width, height)
            plt._set_size(width, height)  # as PlotextPlot.render does: resizing needs both
            plt.theme(theme)
            figure: Any = plt  # plt.build() without writing the ANSI text (see the top)
            figure._set_sizes()
            figure._build_matrix()
            return matrix_lines(figure.monitor.matrix, width, height)

    def show(self, picture: list[Strip]) -> bool:
        return self.chart.show_picture(self.generation, self.key, picture)


@dataclass
class PictureBuilt(Message, bubble=False):
    """A chart's picture, built in a thread: posted to the chart that asked for it."""

    build: Build
    picture: list[Strip]


class ThreadedPlot(ReportsWorkerFailures, PlotextPlot):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._picture: list[Strip] = []
        self._picture_key: PictureKey | None = None
        self._wanted: PictureKey | None = None
        self._generation = 0

    def state(self) -> Any:
        """What `plot` needs, taken on the UI thread (the build must not read the widget)."""
        raise NotImplementedError

    @staticmethod
    def paint(plt: Plot, width: int, state: Any) -> None:
        """Describe the plot of `state` on `plt` (called in a build thread: see Paint)."""
        raise NotImplementedError

    def next_build(self) -> Build | None:
        """The build that will replace the picture (any started before is then dropped), of
        `self.state()`; None while the chart has no size."""
        width, height = self.size
        if not width or not height:
            return None  # not laid out yet: render() asks again
        self._generation += 1
        key = (width, height, self._get_plotext_theme_name(self.app.theme))
        self._wanted = key
        return Build(self, self._generation, key, self.paint, self.state())

    def draw(self) -> None:
        """Build a picture of the chart's state in a thread; the one shown stays until then."""
        build = self.next_build()
        if build is not None:
            self.build_picture(build)

    @read_worker("plot", "build a chart", exclusive=False)
    def build_picture(self, build: Build) -> None:
        picture = build.picture()
        reply(self, PictureBuilt(build, picture))

    @on(PictureBuilt)
    def picture_built(self, message: PictureBuilt) -> None:
        message.build.show(message.picture)

    def show_picture(self, generation: int, key: PictureKey, picture: list[Strip]) -> bool:
        """Put a built picture on screen, unless a newer build was started since (False)."""
        if generation != self._generation:
            return False
        self._picture, self._picture_key = picture, key
        self.refresh()
        return True

    def render_line(self, y: int) -> Strip:
        """The built picture's lines (Textual's line API: nothing is rendered here)."""
        key = (self.size.width, self.size.height, self._get_plotext_theme_name(self.app.theme))
        if key != self._picture_key and key != self._wanted:
            self._wanted = key  # resized or re-themed since the last build
            self.call_later(self.draw)
        if y < len(self._picture):
            return self._picture[y]
        return Strip.blank(self.size.width, self.rich_style)
