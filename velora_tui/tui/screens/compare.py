"""Compare: the reward curves of the marked experiments overlaid, across databases."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Header, Static
from textual.worker import Worker, WorkerState
from textual_plotext.plot import Plot

from velora_tui.data.records import Key
from velora_tui.data.series import Series, SeriesReader, SeriesReaders, thin
from velora_tui.data.smoothing import smooth
from velora_tui.report.format import experiment_label
from velora_tui.tui.messages import CurvesRead, DataChanged
from velora_tui.tui.screens.base import VeloraScreen
from velora_tui.tui.widgets.charts import (
    CHART_BINDINGS,
    ChartOptions,
    Redraws,
    finite_points,
    set_x_ticks,
)
from velora_tui.tui.widgets.key_footer import KeyFooter
from velora_tui.tui.widgets.plot import ThreadedPlot
from velora_tui.tui.widgets.status_bar import StatusBar
from velora_tui.tui.workers import read_worker, reply

PALETTE = (
    (90, 170, 255),
    (255, 150, 90),
    (120, 220, 160),
    (255, 110, 140),
    (200, 160, 255),
    (240, 210, 90),
    (100, 220, 230),
    (230, 230, 230),
)


class CompareChart(ThreadedPlot):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.curves: list[Series] = []  # in the order of the legend
        self.options = ChartOptions()

    def show(self, curves: list[Series] | None = None, options: ChartOptions | None = None) -> None:
        if curves is not None:
            self.curves = curves
        if options is not None:
            self.options = options
        self.draw()

    def state(self) -> tuple[list[Series], ChartOptions]:
        return self.curves, self.options

    @staticmethod
    def paint(plt: Plot, width: int, state: tuple[list[Series], ChartOptions]) -> None:
        curves, options = state
        x_label = "episode"
        every_x: list[float] = []
        for index, series in enumerate(curves):
            xs, x_label = options.x_values(series)
            every_x += xs
            ys = smooth(series.bands["reward"].mean, options.smoothing)
            x, y = finite_points(xs, ys)
            if x:
                plt.plot(x, y, marker="braille", color=PALETTE[index % len(PALETTE)])
        set_x_ticks(plt, options, every_x, width)
        plt.xlabel(x_label)
        smoothing = options.smoothing
        plt.title("reward" + (f" · smoothing {smoothing:g}" if smoothing else ""))


class CompareScreen(VeloraScreen):
    BINDINGS = [
        Binding("escape", "back", "Back", tooltip="back to the list"),
        *CHART_BINDINGS,
    ]

    def __init__(self, keys: list[Key]) -> None:
        super().__init__()
        self.keys = keys
        self.options = ChartOptions()
        self.redraws = Redraws(self, self._read_curves_due)
        self.readers = SeriesReaders(size=len(keys))

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="◆")
        yield Static(id="legend")
        yield CompareChart(id="compare-chart")
        yield StatusBar(id="status")
        yield KeyFooter()

    def on_mount(self) -> None:
        legend = Text("comparing  ", style="bold", no_wrap=True, overflow="ellipsis")
        for index, key in enumerate(self.keys):
            summary = self.host.monitor.summary(key)
            name = experiment_label(summary) if summary else f"#{key[1]}"
            if len(self.host.monitor.databases) > 1:
                name += f" ({key[0].parent.name})"
            red, green, blue = PALETTE[index % len(PALETTE)]
            legend.append("━━ ", style=f"rgb({red},{green},{blue})")
            legend.append(name + "   ")
        self.query_one("#legend", Static).update(legend)
        self.show_status()
        self.load_curves()

    def load_curves(self) -> None:
        """Ask for the curves again: paced, one read at a time (Redraws)."""
        self.redraws.request()

    def _read_curves_due(self) -> None:
        width = self.query_one(CompareChart).size.width
        databases = self.host.monitor.databases
        readers = [
            self.readers.get(database, exp_id) if (database := databases.get(db)) else None
            for db, exp_id in self.keys
        ]
        self.read_curves(readers, max(60, min(2 * width, 600)) if width else 200)

    @read_worker("compare", "read the curves", exclusive=False)
    def read_curves(self, readers: list[SeriesReader | None], buckets: int) -> None:
        curves = [thin(reader.read(), buckets) if reader else Series() for reader in readers]
        reply(self, CurvesRead(curves))

    @on(CurvesRead)
    def show_curves(self, message: CurvesRead) -> None:
        self.query_one(CompareChart).show(message.curves, self.options)

    def worker_ended(self, worker: Worker[Any], state: WorkerState) -> None:
        if worker.group == "compare":
            self.redraws.done()

    def catch_up(self) -> None:
        self.load_curves()

    @on(DataChanged)
    def data_changed(self, message: DataChanged) -> None:
        touched = {(u.db, e) for u in message.updates for e in u.experiments}
        if any(u.reset for u in message.updates):
            self.readers.clear()
        if touched & set(self.keys) or any(u.reset for u in message.updates):
            self.load_curves()
        self.show_status()

    def action_back(self) -> None:
        self.dismiss()

    def set_options(self, options: ChartOptions) -> None:
        self.options = options
        self.query_one(CompareChart).show(options=options)

    def action_smoothing(self, step: int) -> None:
        self.set_options(self.options.step_smoothing(step))

    def action_x_axis(self) -> None:
        self.set_options(self.options.next_x_axis())
