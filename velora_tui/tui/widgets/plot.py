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

import math
import threading
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, cast

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


# Round steps of the y axis (times a power of ten): the steps people read a scale in.
ROUND_STEPS = (1, 2, 5)
# Rows a y label wants to itself: a tick every few rows at least, as plotext's own (7 at most).
ROWS_PER_TICK = 3
MOST_Y_TICKS = 7


def round_ticks(
    low: float, high: float, most: int, cap: int | None = None
) -> tuple[list[float], int]:
    """Ticks at multiples of the smallest step of 1, 2 or 5 times a power of ten that puts at
    most `most` of them in [low, high] (one more where that alone gives two rather than one,
    unless `cap` says there is no room for it),
    and the decimals their labels need (0 for a step of 1 or more). ([], 0) for a range that
    is not finite or is empty."""
    if not (math.isfinite(low) and math.isfinite(high)) or high < low:
        return [], 0
    half = high / 2 - low / 2  # halved: high - low may overflow where both are finite
    if half == 0:
        return [low], _decimals(abs(low))
    most = max(1, most)
    extra = most + 1 if cap is None else max(1, min(most + 1, cap))
    exponent = math.floor(math.log10(half) + math.log10(2 / most))
    found: tuple[list[float], int] = ([], 0)
    for power in range(exponent + 2, exponent - 2, -1):  # from the coarsest step down
        for nice in reversed(ROUND_STEPS):
            try:
                step = nice * 10.0**power
            except OverflowError:
                continue
            if step <= 0 or not math.isfinite(step):
                continue
            first, last = math.ceil(low / step - 1e-9), math.floor(high / step + 1e-9)
            count = last - first + 1
            if count > (extra if len(found[0]) < 2 else most):
                return found
            decimals = max(0, -power)
            ticks = [round(k * step, decimals) for k in range(first, last + 1)]
            # Each once: a step below the floats' resolution there rounds ticks together.
            kept = list(dict.fromkeys(t for t in ticks if low <= t <= high))
            found = kept or ticks[:1], decimals
            if count > most:
                return found
    return found


def _decimals(value: float) -> int:
    """Decimals a lone value's label keeps: three significant digits."""
    if value == 0 or not math.isfinite(value):
        return 0
    return max(0, 2 - math.floor(math.log10(value)))


def tick_labels(ticks: Sequence[float], decimals: int) -> list[str]:
    """The ticks' labels: as many decimals as the step has; very large or small values in
    scientific form (a label is at most about ten columns), with the digits that tell them
    apart."""
    sizes = [abs(t) for t in ticks if t]
    if sizes and (max(sizes) >= 1e9 or max(sizes) < 1e-5):
        for digits in range(3, 18):
            labels = [f"{tick:.{digits}g}" for tick in ticks]
            if len(set(labels)) == len(labels):
                return labels
        return labels
    labels = [f"{tick:.{decimals}f}" for tick in ticks]
    return ["0" if label.lstrip("-").strip("0.") == "" else label for label in labels]


def log_ticks(low: float, high: float, most: int) -> list[float]:
    """Round ticks of a log axis over [10**low, 10**high]: the powers of ten, else 1, 2 and 5
    times them; within one of those, round linear ticks."""
    if not (math.isfinite(low) and math.isfinite(high)) or high < low:
        return []
    powers = [10.0**k for k in range(math.ceil(low - 1e-9), math.floor(high + 1e-9) + 1)]
    if len(powers) > most:
        stride = math.ceil(len(powers) / most)
        return powers[::stride]
    if len(powers) >= 2:
        return powers
    nice = [
        m * 10.0**k
        for k in range(math.floor(low) - 1, math.ceil(high) + 1)
        for m in ROUND_STEPS
        if low - 1e-9 <= math.log10(m * 10.0**k) <= high + 1e-9
    ]
    if len(nice) >= 2:
        return nice[:most]
    ticks, _ = round_ticks(10.0**low, 10.0**high, most)
    return [t for t in ticks if t > 0]


def set_round_y_ticks(plt: Plot, height: int) -> None:
    """Ticks of the left y axis at round steps (1, 2 or 5 times a power of ten) within the
    range plotext will draw (its own are spread evenly between the data's ends: 63.9, 49.9,
    35.8). Left as they are where a paint set its own."""
    monitor: Any = cast(Any, plt).monitor
    if monitor.yticks[0] is not None:
        return
    left = monitor.default.yside[0]
    log = monitor.yscale[0] == monitor.default.yscale[1]
    ys: list[float] = []
    for y, side in zip(monitor.y, monitor.yside, strict=False):
        if side == left:
            ys.extend(y)
    ys.extend(y for y, side in zip(monitor.ty, monitor.tyside, strict=False) if side == left)
    ys.extend(monitor.hcoord[0])
    values = [float(y) for y in ys if isinstance(y, int | float) and math.isfinite(y)]
    if log:
        values = [math.log10(y) for y in values if y > 0]
    if not values:
        return
    low, high = plotext_utility.get_lim(values)
    if monitor.ylim[0][0] is not None and monitor.ylim[0][1] is not None:
        low, high = sorted(monitor.ylim[0])
    # The canvas's rows, as plotext counts them: the frame's two lines, the x labels, and a
    # line each for the title and the x axis's name.
    rows = height - 3 - (monitor.title is not None) - (monitor.xlabel[0] is not None)
    most = max(1, min(MOST_Y_TICKS, rows // ROWS_PER_TICK))
    room = max(1, (rows + 1) // 2)  # two labels never on one row (the last one drawn would win)
    if log:
        ticks = log_ticks(low, high, most)
        if not ticks:
            return
        plt.yticks(ticks, [f"{tick:.6g}" for tick in ticks])  # 0.01, 1, 100, 1e+06
        return
    ticks, decimals = round_ticks(low, high, most, room)
    if ticks:
        plt.yticks(ticks, tick_labels(ticks, decimals))


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
            set_round_y_ticks(plt, height)
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
