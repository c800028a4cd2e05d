"""Charts of an experiment's series (textual-plotext), redrawn once per batch of new rows."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from textual.binding import Binding
from textual.message_pump import MessagePump
from textual_plotext.plot import Plot

from velora_tui.data.series import Series, thin
from velora_tui.data.smoothing import smooth
from velora_tui.tui.widgets.pacing import Paced
from velora_tui.tui.widgets.plot import Build, ThreadedPlot

FAINT = (110, 110, 130)
RAW = (80, 90, 120)
X_AXES = ("episode", "steps", "time")
INTEGER_X_AXES = frozenset({"episode", "steps"})  # counts: ticks at whole numbers
X_TICKS = 5  # at most, as plotext's own x axis has
Y_LABELS = 8  # columns left of the plot for the y axis and its labels, usually
TICK_GAP = 2  # columns between two x ticks beyond a label's width (plotext keeps 1 free)
NICE_STEPS = (1.0, 2.0, 2.5, 5.0)
SMOOTHING_STEPS = (0.0, 0.3, 0.6, 0.8, 0.9, 0.95, 0.99, 0.999)
# What the charts' keys do, in the footer's tooltips and in the help (the same on every screen).
SMOOTHING_HELP = "charts: more / less smoothing (debiased moving average, 0 to 0.999)"
X_AXIS_HELP = "charts: x axis: episode, environment steps, time since the start"
# The keys of every screen with charts (their actions: smoothing(step), x_axis).
CHART_BINDINGS = [
    # One pair of keys: `+/-` for both, in the footer and in the help.
    Binding(
        "plus,equals_sign", "smoothing(1)", "Smooth±", key_display="+/-", tooltip=SMOOTHING_HELP
    ),
    Binding(
        "minus",
        "smoothing(-1)",
        "Less smoothing",
        show=False,
        key_display="+/-",
        tooltip=SMOOTHING_HELP,
    ),
    Binding("x", "x_axis", "X axis", tooltip=X_AXIS_HELP),
]
CHART_INTERVAL = 1.0  # seconds between redraws while rows keep arriving


@dataclass(frozen=True, slots=True)
class ChartSpec:
    title: str
    metric: str
    color: tuple[int, int, int]
    loss: bool = False

    @property
    def plotted(self) -> tuple[str, ...]:
        """The series this chart draws: the reward chart adds the moving average and std."""
        if self.metric == "reward":
            return ("reward", "reward_moving_avg", "reward_moving_std")
        return (self.metric,)


@dataclass(frozen=True, slots=True)
class ChartOptions:
    smoothing: float = 0.6
    x_axis: str = "episode"
    log_losses: bool = False

    def x_values(self, series: Series) -> tuple[list[float], str]:
        if self.x_axis == "steps":
            return series.steps, "environment steps"
        if self.x_axis == "time":
            finite = [s for s in series.seconds if math.isfinite(s)]
            if finite and max(finite) > 3 * 3600:
                return [s / 3600 for s in series.seconds], "hours since start"
            if finite and max(finite) > 600:
                return [s / 60 for s in series.seconds], "minutes since start"
            return series.seconds, "seconds since start"
        return series.episode, "episode"

    def step_smoothing(self, step: int) -> ChartOptions:
        """The next (or previous) smoothing step from the nearest one to the current weight."""
        steps = SMOOTHING_STEPS
        nearest = min(range(len(steps)), key=lambda i: abs(steps[i] - self.smoothing))
        return replace(self, smoothing=steps[max(0, min(len(steps) - 1, nearest + step))])

    def next_x_axis(self) -> ChartOptions:
        return replace(self, x_axis=X_AXES[(X_AXES.index(self.x_axis) + 1) % len(X_AXES)])


REWARD = ChartSpec("reward", "reward", (90, 170, 255))
PANELS = (
    ChartSpec("episode length", "length", (200, 160, 255)),
    ChartSpec("actor loss", "actor_loss", (255, 150, 90), loss=True),
    ChartSpec("critic loss", "critic_loss", (255, 110, 140), loss=True),
    ChartSpec("entropy loss", "entropy_loss", (120, 220, 160), loss=True),
)


def finite_points(xs: Sequence[float], ys: Sequence[float]) -> tuple[list[float], list[float]]:
    pairs = [(x, y) for x, y in zip(xs, ys, strict=False) if math.isfinite(x) and math.isfinite(y)]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def integer_ticks(low: float, high: float, most: int = X_TICKS) -> list[int]:
    """Round whole numbers between `low` and `high` for an axis of counts, at most `most`
    (plotext spaces its own ticks evenly between the ends: 30.8, 60.5 on an episode axis)."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return []
    first, last = math.ceil(low), math.floor(high)
    if last <= first:
        return [first] if last == first else []
    magnitude = 10 ** max(0, math.floor(math.log10((last - first) / most)))
    while True:
        for nice in NICE_STEPS:
            step = nice * magnitude
            if step.is_integer():
                ticks = range(-(-first // int(step)) * int(step), last + 1, int(step))
                if len(ticks) <= most:
                    return list(ticks)
        magnitude *= 10


def set_x_ticks(plt: Plot, options: ChartOptions, xs: Sequence[float], width: int) -> None:
    """Whole-number ticks on the episode and steps axes (plotext's own are spread evenly),
    about as far apart as their labels need (plotext drops a label that would touch one drawn
    before it)."""
    finite = [x for x in xs if math.isfinite(x)]
    if options.x_axis not in INTEGER_X_AXES or not finite:
        return
    low, high = min(finite), max(finite)
    room = max(1, width - Y_LABELS)  # the plot's own columns, at least
    for most in range(X_TICKS, 0, -1):
        ticks = integer_ticks(low, high, most)
        label = max((len(str(tick)) for tick in ticks), default=0)
        step = ticks[1] - ticks[0] if len(ticks) > 1 else 0
        if len(ticks) < 2 or room * step / max(high - low, 1) >= label + TICK_GAP:
            break
    if ticks:
        values, labels = [float(tick) for tick in ticks], [str(tick) for tick in ticks]
        plt.xticks(values, labels)
        # plotext stores them through a set: put them back in order, so that when two labels
        # would touch, the one on the left is drawn every time.
        figure: Any = plt
        figure.monitor.xticks[0], figure.monitor.xlabels[0] = values, labels


def for_log_scale(values: Sequence[float]) -> tuple[list[float], str]:
    """Values a log axis can show, and what was done to them (said on the chart)."""
    finite = [v for v in values if math.isfinite(v)]
    if finite and all(v < 0 for v in finite):
        return [-v if math.isfinite(v) else math.nan for v in values], "negated"
    hidden = sum(1 for v in finite if v <= 0)
    kept = [v if math.isfinite(v) and v > 0 else math.nan for v in values]
    return kept, f"{hidden} <= 0 hidden" if hidden else ""


@dataclass(frozen=True, slots=True)
class MetricState:
    """What a MetricChart's picture is of."""

    spec: ChartSpec
    series: Series | None
    options: ChartOptions


def of_rows(build: Build, series: Series) -> Build:
    """A MetricChart's build, of `series` instead (touches no widget: for a reading thread)."""
    state: MetricState = build.state
    return replace(build, state=replace(state, series=series))


class MetricChart(ThreadedPlot):
    """One metric, smoothed over its faint raw curve; the reward also gets its moving average
    and a +-std band. When downsampled, each bucket's min and max are drawn faintly too."""

    def __init__(self, spec: ChartSpec, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.spec = spec
        self.series: Series | None = None
        self.options = ChartOptions()

    def show(self, series: Series | None = None, options: ChartOptions | None = None) -> None:
        if series is not None:
            self.series = series
        if options is not None:
            self.options = options
        self.draw()

    def state(self) -> MetricState:
        return MetricState(self.spec, self.series, self.options)

    @staticmethod
    def paint(plt: Plot, width: int, state: MetricState) -> None:
        spec, series, options = state.spec, state.series, state.options
        if series is not None:
            series = thin(series, 2 * width, spec.plotted)
        band = series.bands[spec.metric] if series is not None else None
        if series is None or band is None or not band.has_data():
            note = "no data" if series is not None and len(series) else "waiting for episodes"
            if series is None or not series.complete:
                note = "reading…"  # nothing read yet: not "no episodes", which may be untrue
            plt.title(f"{spec.title}: {note}")
            return
        xs, x_label = options.x_values(series)
        set_x_ticks(plt, options, xs, width)
        if spec.metric == "reward":
            plt.xlabel(x_label)
        notes = []
        log_note = ""
        mean, low, high = band.mean, band.low, band.high
        if spec.loss and options.log_losses:
            mean, log_note = for_log_scale(mean)
            low, _ = for_log_scale(low)
            high, _ = for_log_scale(high)
            plt.yscale("log")
            notes.append("log")
        short = " (log)" if spec.loss and options.log_losses else ""
        # Dense noisy series as points: plotext joins a line's points with braille dots, many
        # times the work of the same points unjoined for a noisy series. At two points a column,
        # the points read as a line anyway.
        faint = plt.plot if len(series) <= width else plt.scatter
        if not series.exact:
            edge_x, low_y = finite_points(xs, low)
            high_x, high_y = finite_points(xs, high)
            plt.scatter(edge_x + high_x, low_y + high_y, marker="braille", color=FAINT)
        if options.smoothing > 0:
            faint(*finite_points(xs, mean), marker="braille", color=RAW)
            mean = smooth(mean, options.smoothing)
            notes.append(f"smoothing {options.smoothing:g}")
        x, y = finite_points(xs, mean)
        if not x:
            plt.title(f"{spec.title}: nothing to plot ({', '.join(notes)})")
            return
        plt.plot(x, y, marker="braille", color=spec.color)
        title = spec.title + short
        if spec.metric == "reward":
            avg = series.bands["reward_moving_avg"].mean
            std = series.bands["reward_moving_std"].mean
            for sign in (1, -1):
                edge = [a + sign * s for a, s in zip(avg, std, strict=False)]
                faint(*finite_points(xs, edge), marker="dot", color=(70, 110, 90))
            plt.plot(*finite_points(xs, avg), marker="braille", color=(240, 210, 90))
            title = "reward (blue) · moving avg ± std (yellow)"
            if options.smoothing:
                title += f" · smoothing {options.smoothing:g}"
        elif log_note == "negated":
            title = f"-{spec.title} (log)"  # all values negative: plotted negated
        elif log_note:
            title = f"{spec.title} (log, {log_note})"
        if not series.complete:
            title += f" · {series.rows} sampled episodes, reading all…"
        plt.title(title)


class Redraws:
    """Paces a chart screen's reads: at most one in flight, and at most one redraw every
    CHART_INTERVAL, so a batch of rows means one redraw and a fast writer a few a second.
    `request()` when the data changed; `done()` when the read has ended, whichever way (on
    its worker's end: a read that fails must not stop every later one)."""

    def __init__(self, node: MessagePump, start: Callable[[], None]) -> None:
        self.start = start
        self.dirty = True
        self.loading = False
        self.pace = Paced(node, CHART_INTERVAL, self._due)

    def request(self) -> None:
        self.dirty = True
        if not self.loading:
            self.pace.request()

    def done(self) -> None:
        self.loading = False
        self.pace.shown = time.monotonic()  # the interval runs from the drawing, not the start
        if self.dirty:
            self.pace.request()

    def _due(self) -> None:
        if self.loading or not self.dirty:
            return
        self.loading, self.dirty = True, False
        self.start()
