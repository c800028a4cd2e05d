"""One experiment, in tabs: charts, the live episode tail, and its config."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.strip import Strip
from textual.widgets import Header, TabbedContent, TabPane
from textual.worker import Worker, WorkerState

from velora_tui.data.config import ConfigView
from velora_tui.data.database import MetricsDatabase
from velora_tui.data.deadline_lanes import urgent
from velora_tui.data.records import EpisodeRow, Key
from velora_tui.data.series import Series, SeriesReader, SeriesReaders, sampled_series, thin
from velora_tui.tui.messages import ConfigRead, DataChanged, EpisodesRead
from velora_tui.tui.screens.base import VeloraScreen
from velora_tui.tui.widgets.charts import (
    CHART_BINDINGS,
    PANELS,
    REWARD,
    ChartOptions,
    MetricChart,
    Redraws,
    of_rows,
)
from velora_tui.tui.widgets.config_panel import ConfigPanel
from velora_tui.tui.widgets.episode_table import FOLLOW_HELP, MAX_ROWS, EpisodeTable
from velora_tui.tui.widgets.experiment_header import ExperimentHeader
from velora_tui.tui.widgets.key_footer import KeyFooter
from velora_tui.tui.widgets.line import Line
from velora_tui.tui.widgets.pacing import Paced
from velora_tui.tui.widgets.plot import Build
from velora_tui.tui.widgets.status_bar import StatusBar
from velora_tui.tui.workers import cancelled, read_worker, reply

HEADER_INTERVAL = 0.25
# Charts of a run with more rows to read than this are first drawn from episodes sampled over it
# (a seek each): reading every row of a run of millions takes seconds.
PREVIEW_ABOVE = 100_000
TABS = ("charts", "episodes", "config")
TABS_HELP = "tabs: Charts, Episodes, Config"
BACK_HELP = "back to the list"


@dataclass
class SeriesRead(Message, bubble=False):
    """The experiment's series, thinned to the charts' width, and each chart's picture of it
    (the screen's own reply to itself: messages.py has the pattern)."""

    series: Series
    pictures: list[tuple[Build, list[Strip]]]


class ExperimentScreen(VeloraScreen):
    BINDINGS = [
        Binding("escape", "back", "Back", tooltip=BACK_HELP),
        Binding("1", "tab('charts')", "Charts", show=False, tooltip=TABS_HELP),
        Binding("2", "tab('episodes')", "Episodes", show=False, tooltip=TABS_HELP),
        Binding("3", "tab('config')", "Config", show=False, tooltip=TABS_HELP),
        Binding("tab", "next_tab(1)", "Next tab", show=False, priority=True, tooltip=TABS_HELP),
        Binding(
            "shift+tab",
            "next_tab(-1)",
            "Previous tab",
            show=False,
            priority=True,
            tooltip="the tab before",
        ),
        Binding("f", "follow", "Follow", tooltip=FOLLOW_HELP),
        *CHART_BINDINGS,
        Binding("l", "log_scale", "Log", tooltip="charts: log scale for the losses"),
        Binding(
            "slash",
            "search_config",
            "Search config",
            show=False,
            tooltip="search the config (Enter: next match, Esc: back to the tree)",
        ),
    ]

    def __init__(self, key: Key) -> None:
        super().__init__()
        self.key = key
        self.charts = Redraws(self, self._read_series_due)
        self.header = Paced(self, HEADER_INTERVAL, self._show_header)
        self.chart_options = ChartOptions()
        self.focus_on_show: Callable[[], object] | None = None
        self.tab_switching = False  # a tab was made active; its TabActivated has not come yet
        self.readers = SeriesReaders(size=1)
        # Panes read when first shown: opening an experiment builds only what it shows (the
        # open is a burst of CPU a training process on the same cores feels).
        self.unread: set[str] = {"episodes", "config"}
        self.read_again = False  # a pane's read failed: try again with the next rows

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="◆")
        yield ExperimentHeader()
        with TabbedContent(id="tabs"):
            with TabPane("1 Charts", id="charts"), Vertical(id="chart-grid"):
                yield MetricChart(REWARD, id="chart-reward")
                with Horizontal(id="chart-panels"):
                    for spec in PANELS:
                        yield MetricChart(spec, id=f"chart-{spec.metric}")
            with TabPane("2 Episodes", id="episodes"):
                yield Line(id="follow-state")
                yield EpisodeTable(id="episode-table")
            with TabPane("3 Config", id="config"):
                yield ConfigPanel(id="config-panel")
        yield StatusBar(id="status")
        yield KeyFooter()

    def on_mount(self) -> None:
        settings = self.host.settings  # the charts' smoothing and x axis from settings.toml
        chosen = replace(
            self.chart_options,
            smoothing=self.chart_options.smoothing
            if settings.smoothing is None
            else settings.smoothing,
            x_axis=settings.x_axis or self.chart_options.x_axis,
        )
        if chosen != self.chart_options:
            self.chart_options = chosen
            for chart in self.query(MetricChart):
                chart.options = chosen
        self.show_header()
        self.load_series()

    def read_pane(self, pane: str) -> None:
        """Load a pane's data if it has not been read since it was last reset."""
        if pane in self.unread:
            self.unread.discard(pane)
            if pane == "episodes":
                self.load_episodes()
            elif pane == "config":
                self.load_config()

    # -- loading: load_x asks, the thread worker read_x reads, @on(XRead) shows ------------

    def database(self) -> MetricsDatabase | None:
        return self.host.monitor.databases.get(self.key[0])

    def load_episodes(self) -> None:
        self.read_episodes(self.database(), self.key[1])

    @read_worker("episodes", "read the episodes")
    def read_episodes(self, database: MetricsDatabase | None, exp_id: int) -> None:
        with urgent():  # what the user looks at, before the background's reads
            rows = database.latest_episodes(exp_id, MAX_ROWS) if database else []
        reply(self, EpisodesRead(rows))

    @on(EpisodesRead)
    def show_episode_snapshot(self, message: EpisodesRead) -> None:
        self.show_episodes(message.rows, replace=True)

    def load_config(self) -> None:
        self.read_config(self.database(), self.key[1])

    @read_worker("config", "read config")
    def read_config(self, database: MetricsDatabase | None, exp_id: int) -> None:
        with urgent():
            view = database.config(exp_id) if database else ConfigView("", error="no database")
        reply(self, ConfigRead(view))

    @on(ConfigRead)
    def show_config(self, message: ConfigRead) -> None:
        self.query_one(ConfigPanel).show(message.view)

    def load_series(self) -> None:
        """Ask for the charts' rows: at most one read at a time, a batch of rows one redraw."""
        if self.query_one(TabbedContent).active != "charts":
            self.charts.dirty = True  # read when the tab shows
            return
        self.charts.request()

    def _read_series_due(self) -> None:
        """What the read needs, taken here on the UI thread (Redraws calls it when due)."""
        width = self.query_one("#chart-reward", MetricChart).size.width
        builds = [build for chart in self.query(MetricChart) if (build := chart.next_build())]
        database = self.database()
        reader = self.readers.get(database, self.key[1]) if database else None
        self.read_series(reader, 2 * width if width else 200, builds)

    @read_worker("series", "read charts")
    def read_series(self, reader: SeriesReader | None, points: int, builds: list[Build]) -> None:
        """Only the rows not read before, thinned to the charts' width, and every chart's
        picture of them: all in this one thread, off the UI thread. A run too long to read at
        once is first shown from episodes sampled over it, then from all its rows."""
        with urgent():  # what the user looks at, before the background's reads
            if reader is not None and reader.unread() > PREVIEW_ABOVE:
                sample = reader.database.sample(reader.exp_id, points)
                self.post_series(sampled_series(sample), builds)
            while True:
                # In parts, so that a screen closed meanwhile stops the read.
                read = reader.read(budget=0.5) if reader else Series()
                if cancelled():
                    return
                if read.complete:
                    break
        self.post_series(thin(read, points), builds)

    def post_series(self, series: Series, builds: list[Build]) -> None:
        pictures = [(build, build.picture()) for build in (of_rows(b, series) for b in builds)]
        reply(self, SeriesRead(series, pictures))

    @on(SeriesRead)
    def show_series(self, message: SeriesRead) -> None:
        built = {build.chart for build, _ in message.pictures}
        for chart in self.query(MetricChart):
            chart.series = message.series
            if chart not in built:
                chart.draw()  # it had no size when the read began
        for build, picture in message.pictures:
            if not build.show(picture):
                build.chart.draw()  # redrawn meanwhile (resized, new options): again, of these rows

    def worker_ended(self, worker: Worker[Any], state: WorkerState) -> None:
        """Whichever way a read ends, the next one can start: a failed one (reported by
        ReportsWorkerFailures) leaves nothing stuck."""
        if worker.group == "series":
            self.charts.done()
        elif state is WorkerState.ERROR and worker.group in ("episodes", "config"):
            self.unread.add(worker.group)  # read again when next shown, or with the next rows
            self.read_again = True

    def show_episodes(self, rows: list[EpisodeRow], replace: bool = False) -> None:
        table = self.query_one(EpisodeTable)
        if replace:
            # Rows that arrived while this snapshot was read are newer than it: keep them.
            merged = {row.id: row for row in [*rows, *table.kept]}
            rows = [merged[key] for key in sorted(merged)]
            table.reset()
        table.add_episodes(rows)

    def show_header(self) -> None:
        self.header.request()  # a few times a second: it reads the same while rows pour in
        self.show_status()

    def _show_header(self) -> None:
        app = self.host
        self.query_one(ExperimentHeader).show(app.monitor.summary(self.key), app.now())

    # -- live ------------------------------------------------------------------------------

    def catch_up(self) -> None:
        if "episodes" not in self.unread:
            self.load_episodes()
        self.load_series()
        self.show_header()

    @on(DataChanged)
    def data_changed(self, message: DataChanged) -> None:
        db, exp_id = self.key
        mine = [u for u in message.updates if u.db == db]
        if any(u.reset for u in mine):
            self.readers.clear()
            self.query_one(EpisodeTable).reset()  # the old file's rows
            self.unread = {"episodes", "config"}
            self.read_pane(self.query_one(TabbedContent).active)
            self.load_series()
        else:
            rows = [r for u in mine for r in u.episodes if r.experiment_id == exp_id]
            if rows:
                self.show_episodes(rows)
                self.load_series()
                if self.read_again:
                    self.read_again = False
                    self.read_pane(self.query_one(TabbedContent).active)
        self.show_header()

    @on(EpisodeTable.FollowChanged)
    def follow_changed(self, message: EpisodeTable.FollowChanged) -> None:
        label = self.query_one("#follow-state", Line)
        if message.following:
            label.show("following: new episodes scroll into view")
        else:
            label.show(f"paused: {message.unseen} new episodes below (f or End: follow)")
        label.set_class(not message.following, "paused")

    @on(TabbedContent.TabActivated)
    def tab_activated(self, event: TabbedContent.TabActivated) -> None:
        focus, self.focus_on_show = self.focus_on_show, None
        self.tab_switching = False
        if event.pane.id == "charts" and self.charts.dirty:
            self.load_series()
        elif event.pane.id is not None:
            self.read_pane(event.pane.id)
        if focus is not None:
            focus()
        elif event.pane.id == "episodes":
            self.query_one(EpisodeTable).focus()
        elif event.pane.id == "config":
            self.query_one(ConfigPanel).focus_tree()

    # -- actions ---------------------------------------------------------------------------

    def action_back(self) -> None:
        self.dismiss()

    def show_tab(self, tab: str, focus: Callable[[], object] | None = None) -> None:
        """Show `tab`, and give the focus to its view (or to what `focus` focuses)."""
        tabs = self.query_one(TabbedContent)
        if tabs.active == tab:
            if focus is not None and self.tab_switching:
                self.focus_on_show = focus  # the switch under way would focus its default
            elif focus is not None:
                focus()
            return
        self.focus_on_show = focus
        self.tab_switching = True
        # A focused widget left in the hidden pane would make TabbedContent switch back.
        self.set_focus(None)
        tabs.active = tab
        # Lay out with the new pane at the next frame. Left to the panes, the layout comes two
        # frames later, after a frame that repaints the old pane.
        self.refresh(layout=True)

    def action_tab(self, tab: str) -> None:
        self.show_tab(tab)

    def action_next_tab(self, step: int) -> None:
        tabs = self.query_one(TabbedContent)
        index = TABS.index(tabs.active) if tabs.active in TABS else 0
        self.show_tab(TABS[(index + step) % len(TABS)])

    def set_chart_options(self, options: ChartOptions) -> None:
        if options.smoothing != self.chart_options.smoothing:
            self.host.smoothing_chosen(options.smoothing)  # kept for next time (settings.toml)
        self.chart_options = options
        self.show_tab("charts")
        for chart in self.query(MetricChart):
            chart.show(options=options)

    def action_smoothing(self, step: int) -> None:
        self.set_chart_options(self.chart_options.step_smoothing(step))

    def action_x_axis(self) -> None:
        self.set_chart_options(self.chart_options.next_x_axis())

    def action_log_scale(self) -> None:
        log = not self.chart_options.log_losses
        self.set_chart_options(replace(self.chart_options, log_losses=log))

    def action_search_config(self) -> None:
        self.show_tab("config", focus=self.query_one(ConfigPanel).focus_search)

    def action_follow(self) -> None:
        self.show_tab("episodes")
        self.query_one(EpisodeTable).action_follow()
