"""Groups on screen: a group's chart (mean curve and a ± std or min-max band, the run count
where runs end), the marked groups' charts overlaid, and the picker of keys to group by."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Header, Input, SelectionList, Static
from textual.worker import Worker, WorkerState
from textual_plotext.plot import Plot

from velora_tui.data.cleaning import clean_text
from velora_tui.data.group_reads import group_curve, read_series
from velora_tui.data.groups import Aggregate, Group, Joining, Regroup, normalize_key
from velora_tui.data.seed_stats import WIDE_NOTE
from velora_tui.data.series import SeriesReader, SeriesReaders
from velora_tui.tui.messages import DataChanged, GroupCurvesRead
from velora_tui.tui.screens.base import VeloraScreen
from velora_tui.tui.screens.compare import PALETTE
from velora_tui.tui.widgets.charts import CHART_BINDINGS, ChartOptions, Redraws, set_x_ticks
from velora_tui.tui.widgets.group_table import interval_cell, stat_cell
from velora_tui.tui.widgets.key_footer import KeyFooter
from velora_tui.tui.widgets.plot import ThreadedPlot
from velora_tui.tui.widgets.status_bar import StatusBar
from velora_tui.tui.workers import read_worker, reply

BANDS = ("std", "min-max", "ci")
BAND_HELP = (
    "group charts: band of ± std / of min to max over the runs / the IQM curve and its 95%"
    " bootstrap interval"
)
BAND_TITLES = {
    "std": "mean reward, ± std band",
    "min-max": "mean reward, min-max band",
    "ci": "IQM reward, 95% CI band",
}
# Seconds of reading a redraw: a group of long runs is first drawn from what was read in that
# time, and grows redraw by redraw until every row is read.
READ_BUDGET = 0.5
# Buckets a run's series is kept in (in SQL): a few per point of the chart, so the smoothing
# and aggregation of many runs stay cheap.
RUN_POINTS = 600
# Labels of the run count where runs end, a curve at most (more would cover the curve).
MAX_END_LABELS = 6


@dataclass(frozen=True, slots=True)
class GroupChartState:
    curves: tuple[Aggregate, ...]
    options: ChartOptions
    band: str
    reading: bool = False  # rows are still being read: the curves end early


def _probability(value: float) -> str:
    return f"{value:.2f}"


def _faint(color: tuple[int, int, int]) -> tuple[int, int, int]:
    red, green, blue = color
    return (red * 4 // 10, green * 4 // 10, blue * 4 // 10)


def time_scale(xs: Sequence[float]) -> tuple[float, str]:
    """Seconds shown as seconds, minutes or hours, as the experiment's charts do."""
    finite = [x for x in xs if math.isfinite(x)]
    top = max(finite, default=0.0)
    if top > 3 * 3600:
        return 3600.0, "hours since start"
    if top > 600:
        return 60.0, "minutes since start"
    return 1.0, "seconds since start"


def end_labels(
    curve: Aggregate, xs: Sequence[float], ys: Sequence[float]
) -> list[tuple[float, float, str]]:
    """(x, y, text) where runs end, but the last: the number of runs still going after it,
    on the curve drawn (`ys`)."""
    ends = sorted({end for end in curve.ends if math.isfinite(end)})
    labels: list[tuple[float, float, str]] = []
    if not xs:
        return labels
    for end in ends[:-1][-MAX_END_LABELS:]:
        after = sum(1 for other in curve.ends if math.isfinite(other) and other > end)
        index = min(range(len(curve.x)), key=lambda i: abs(curve.x[i] - end))
        labels.append((xs[index], ys[index], f"({after})"))
    return labels


class GroupChart(ThreadedPlot):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.curves: tuple[Aggregate, ...] = ()
        self.options = ChartOptions()
        self.band = BANDS[0]
        self.reading = False

    def show(self) -> None:
        self.draw()

    def state(self) -> GroupChartState:
        return GroupChartState(self.curves, self.options, self.band, self.reading)

    @staticmethod
    def paint(plt: Plot, width: int, state: GroupChartState) -> None:
        options = state.options
        scale, x_label = 1.0, {"steps": "environment steps"}.get(options.x_axis, "episode")
        if options.x_axis == "time":
            scale, x_label = time_scale([x for c in state.curves for x in c.x])
        every_x: list[float] = []
        drawn = False
        for index, curve in enumerate(state.curves):
            if not len(curve):
                continue
            drawn = True
            color = PALETTE[index % len(PALETTE)]
            xs = [x / scale for x in curve.x]
            every_x += xs
            middle = curve.mean
            if state.band == "std":
                low = [m - s for m, s in zip(curve.mean, curve.std, strict=True)]
                high = [m + s for m, s in zip(curve.mean, curve.std, strict=True)]
            elif state.band == "ci":
                middle, low, high = curve.intervals()
            else:
                low, high = curve.low, curve.high
            marker = "braille"
            plt.plot(xs, low, marker=marker, color=_faint(color))
            plt.plot(xs, high, marker=marker, color=_faint(color))
            plt.plot(xs, middle, marker=marker, color=color)
            for x, y, text in end_labels(curve, xs, middle):
                plt.text(text, x=x, y=y, color=color)
        if not drawn:
            plt.title("reward: reading…" if state.reading else "reward: waiting for episodes")
            return
        set_x_ticks(plt, options, every_x, width)
        plt.xlabel(x_label)
        title = f"{BAND_TITLES.get(state.band, state.band)} · (n) runs left"
        if options.smoothing:
            title += f" · smoothing {options.smoothing:g}"
        if not all(curve.exact for curve in state.curves):
            title += " · binned"
        if state.reading:
            title += " · reading…"
        plt.title(title)


class GroupChartScreen(VeloraScreen):
    """One group's chart, or several groups' overlaid (their means and bands)."""

    # A group a line, cut where the screen is narrow (never wrapped into the next group's).
    DEFAULT_CSS = "#group-legend { text-wrap: nowrap; text-overflow: ellipsis; }"

    BINDINGS = [
        Binding("escape", "back", "Back", tooltip="back to the list"),
        Binding("b", "band", "Band", tooltip=BAND_HELP),
        *CHART_BINDINGS,
    ]

    def __init__(self, groups: list[Group], regroup: Regroup | None = None) -> None:
        super().__init__()
        self.groups = groups
        # Runs that join a group shown (a new seed of its config) are taken in.
        self.joining = Joining(regroup)
        self.options = ChartOptions()
        self.band = BANDS[0]
        self.redraws = Redraws(self, self._read_due)
        self.readers = SeriesReaders(RUN_POINTS, size=max(1, sum(len(g.runs) for g in groups)))

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="◆")
        yield Static(id="group-legend")
        yield GroupChart(id="group-chart")
        yield StatusBar(id="status")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.show_legend()
        self.show_status()
        self.redraws.request()

    def show_legend(self) -> None:
        legend = Text(no_wrap=True, overflow="ellipsis")
        now = self.host.now()
        wide = False
        for index, group in enumerate(self.groups):
            if index:
                legend.append("\n" if len(self.groups) < 4 else "   ")
            red, green, blue = PALETTE[index % len(PALETTE)]
            legend.append("━━ ", style=f"rgb({red},{green},{blue})")
            legend.append(clean_text(group.label(), 60), style="bold")
            runs, running = len(group.runs), group.running(now)
            legend.append(f"  {runs} run{'' if runs == 1 else 's'}")
            legend.append(f", {running} running" if running else "")
            legend.append("  final ")
            legend.append_text(stat_cell(group.final()))
            final = group.final_iqm()
            legend.append("  IQM ")
            legend.append_text(interval_cell(final))
            wide = wide or final.wide
            if index and len(self.groups) < 4:
                beats = self.groups[0].beats(group)
                legend.append("  P(1st beats) ")
                legend.append_text(interval_cell(beats, number=_probability))
                wide = wide or beats.wide
        if wide:
            legend.append(f"\n{WIDE_NOTE}", style="dim")
        self.query_one("#group-legend", Static).update(legend)

    def _read_due(self) -> None:
        width = self.query_one(GroupChart).size.width
        databases = self.host.monitor.databases
        readers = [
            [
                self.readers.get(database, run.id)
                if (database := databases.get(run.db)) is not None
                else None
                for run in group.runs
            ]
            for group in self.groups
        ]
        points = max(60, min(2 * width, 600)) if width else 200
        self.read_curves(readers, points, self.options)

    @read_worker("group-chart", "read group curves", exclusive=False)
    def read_curves(
        self, readers: list[list[SeriesReader | None]], points: int, options: ChartOptions
    ) -> None:
        budget = READ_BUDGET / max(1, len(readers))
        read = [read_series(group, budget) for group in readers]
        complete = all(one.complete for group in read for one in group)
        curves = [
            group_curve(group, points, axis=options.x_axis, smoothing=options.smoothing)
            for group in read
        ]
        reply(self, GroupCurvesRead(curves, complete))

    @on(GroupCurvesRead)
    def show_curves(self, message: GroupCurvesRead) -> None:
        chart = self.query_one(GroupChart)
        chart.curves = tuple(message.curves)
        chart.options, chart.band = self.options, self.band
        chart.reading = not message.complete
        chart.show()
        if not message.complete:
            self.redraws.request()  # the rest of the rows, with the next redraw

    def worker_ended(self, worker: Worker[Any], state: WorkerState) -> None:
        if worker.group == "group-chart":
            self.redraws.done()

    def catch_up(self) -> None:
        if self.joining.take_in(self.groups, (), every=True):
            self.runs_joined()
        self.redraws.request()

    @on(DataChanged)
    def data_changed(self, message: DataChanged) -> None:
        if any(u.reset for u in message.updates):
            self.readers.clear()
        touched = {(u.db, e) for u in message.updates for e in u.experiments}
        mine = {key for group in self.groups for key in group.keys}
        joined = self.joining.take_in(self.groups, touched)
        if joined:
            self.runs_joined()
        if joined or touched & mine or any(u.reset for u in message.updates):
            self.redraws.request()
            self.show_legend()
        self.show_status()

    def runs_joined(self) -> None:
        self.readers.size = max(self.readers.size, sum(len(g.runs) for g in self.groups))

    def action_back(self) -> None:
        self.dismiss()

    def action_band(self) -> None:
        self.band = BANDS[(BANDS.index(self.band) + 1) % len(BANDS)]
        chart = self.query_one(GroupChart)
        chart.band = self.band
        chart.show()

    def set_options(self, options: ChartOptions) -> None:
        self.options = options
        self.redraws.request()  # smoothing and x are applied run by run, before aggregating

    def action_smoothing(self, step: int) -> None:
        self.set_options(self.options.step_smoothing(step))

    def action_x_axis(self) -> None:
        self.set_options(self.options.next_x_axis())


class KeyPicker(ModalScreen[list[str] | None]):
    """Pick the config keys to group by: among the keys that differ on screen, or typed."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", tooltip="close without changing the grouping"),
    ]
    DEFAULT_CSS = """
    KeyPicker { align: center middle; }
    KeyPicker > Vertical {
        width: 80%; max-width: 100; height: 80%;
        border: round $primary; background: $surface; padding: 0 1;
    }
    KeyPicker SelectionList { height: 1fr; }
    KeyPicker Input { height: 3; }
    """

    def __init__(self, varied: Sequence[str], chosen: Sequence[str]) -> None:
        super().__init__()
        self.varied = list(varied)
        self.chosen = list(chosen)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(
                Text(
                    "Group by: Space picks keys that differ among the experiments; or type"
                    " dotted keys, comma-separated. Enter applies (nothing: seed grouping).",
                    style="bold",
                )
            )
            yield SelectionList[str](
                # Text: a str prompt is read as markup, and the keys are the configs'.
                *[(Text(clean_text(key, 90)), key, key in self.chosen) for key in self.varied],
                id="key-list",
            )
            yield Input(
                value=", ".join(self.chosen),
                placeholder="model_details.actor_neurons, train_params.batch_size",
                id="key-input",
            )

    def on_mount(self) -> None:
        if self.varied:
            self.query_one("#key-list").focus()
        else:
            self.query_one("#key-list").display = False
            self.query_one("#key-input").focus()

    @on(SelectionList.SelectedChanged)
    def picked(self, event: SelectionList.SelectedChanged[str]) -> None:
        box = self.query_one("#key-input", Input)
        typed = [k for k in parse_keys(box.value) if k not in self.varied]
        box.value = ", ".join([*event.selection_list.selected, *typed])

    @on(Input.Submitted, "#key-input")
    def apply(self, event: Input.Submitted) -> None:
        self.dismiss(parse_keys(event.value))

    def action_cancel(self) -> None:
        self.dismiss(None)


def parse_keys(text: str) -> list[str]:
    return list(dict.fromkeys(k for part in text.split(",") if (k := normalize_key(part))))
