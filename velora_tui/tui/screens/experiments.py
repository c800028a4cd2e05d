"""The main screen: every experiment of every source, with a preview of the highlighted one."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.timer import Timer
from textual.widgets import DataTable, Header, Input, Sparkline, Static
from textual.worker import Worker, WorkerState

from velora_tui.data.cleaning import clean_text
from velora_tui.data.config import flatten
from velora_tui.data.database import MetricsDatabase
from velora_tui.data.groups import SORTS, Group, GroupKey, group_runs, sort_groups, varied_keys
from velora_tui.data.monitor import sort_summaries
from velora_tui.data.records import ExperimentSummary, Key, SourceState
from velora_tui.data.source_names import source_names
from velora_tui.report.format import ago, best_reward, episode_count
from velora_tui.tui.filtering import FilterError, parse_query
from velora_tui.tui.messages import ConfigsRead, DataChanged, OpenExperiment, SparksRead
from velora_tui.tui.screens.base import VeloraScreen
from velora_tui.tui.widgets.experiment_table import OPEN_HELP, ExperimentTable
from velora_tui.tui.widgets.group_table import SWEEP_HELP, GroupTable, OpenGroups, Targets
from velora_tui.tui.widgets.key_footer import KeyFooter
from velora_tui.tui.widgets.line import Line
from velora_tui.tui.widgets.pacing import Paced
from velora_tui.tui.widgets.status_bar import StatusBar
from velora_tui.tui.workers import read_worker, reply

SPARK_POINTS = 60
SPARK_WINDOW = 100
# A list longer than this is no use in a terminal (and slow to rebuild): filter instead.
MAX_ROWS = 500
FILTER_DELAY = 0.12
# While rows stream in, the list is redrawn at most this often (the first change shows at once).
LIST_INTERVAL = 0.25
BACKGROUND_INTERVAL = 1.0


class FilterBox(Input):
    """The list's filter: Enter keeps it and goes back to the list, Esc clears it."""

    BINDINGS = [
        Binding("enter", "submit", "Done"),
        Binding("escape", "screen.clear_filter", "Clear"),
    ]


class ExperimentsScreen(VeloraScreen):
    BINDINGS = [
        Binding("slash", "filter", "Filter", tooltip="filter the list (Enter: done, Esc: clear)"),
        Binding("enter", "open", "Open", show=True, tooltip=OPEN_HELP),
        Binding("escape", "clear_filter", "Clear filter", show=False, tooltip="clear the filter"),
        Binding("space", "mark", "Mark", tooltip="mark / unmark an experiment"),
        Binding(
            "c",
            "compare",
            "Compare",
            tooltip="compare the marked experiments: reward curves overlaid, across databases",
        ),
        Binding(
            "d",
            "diff",
            "Diff configs",
            tooltip="diff the configs of two marked experiments (a: all keys / differences)",
        ),
        Binding("g", "group", "Group", tooltip="group the runs: seeds of a config / ungroup"),
        Binding(
            "G",
            "group_keys",
            "Group by…",
            show=False,
            tooltip="group by config keys: pick among those that differ, or type them",
        ),
        Binding("o", "group_sort", "Sort groups", show=False, tooltip="groups: next sort column"),
        Binding("w", "sweep", "Sweep", show=False, tooltip=SWEEP_HELP),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.query_text = ""
        self.filter_query = parse_query("")
        self.configs: dict[Key, Mapping[str, Any] | None] = {}
        # The keys each read under way was asked for: asked once at a time; a failed read's
        # keys are asked for again (sparklines at the next chance, configs at the next redraw).
        self.configs_reading: dict[Worker[None], set[Key]] = {}
        self.sparks_reading: dict[Worker[None], set[Key]] = {}
        self.spark_due: set[Key] = set()
        # Every experiment drawn so far (shown or filtered out): one not among them is new.
        self.listed: set[Key] = set()
        self.beats = 0
        self.filter_timer: Timer | None = None
        # Experiments changed since the list was last drawn (None: all of them).
        self.pending: set[Key] | None = set()
        self.list_pace = Paced(self, LIST_INTERVAL, self._show_pending)
        # Redraws that no new row asked for (the clock's ages, sparklines read) have a pacer of
        # their own: drawn by the list's, each moved its window, and a run writing 3 episodes
        # a second had nearly every episode held back by it (docs/performance.md, "Pacing
        # redraws").
        self.background_pace = Paced(self, BACKGROUND_INTERVAL, self._show_background)
        # Grouping (`g`): by seeds (no keys) or by chosen config keys; see data/groups.py.
        self.grouping = False
        self.group_keys: list[str] = []
        self.group_sort = SORTS[0][0]
        self.group_cache: dict[Key, GroupKey] = {}
        self.groups: list[Group] = []
        self.group_sparks_asked: set[Key] = set()
        self.group_sparks_at = 0.0  # when sparklines with new episodes were last asked for
        self.picker_due = False  # `G` pressed: the picker opens once the configs are read

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="◆")
        yield FilterBox(
            placeholder="filter: words, agent:X env:X status:running reward>100 "
            "cfg.train_params.batch_size=64",
            id="filter",
        )
        yield Static(id="filter-error")
        with Vertical(id="list"):
            yield ExperimentTable(id="experiments")
            yield GroupTable(id="groups")
            yield Static(id="more")
            yield Static(id="empty")
        with Vertical(id="preview"):
            yield Line(id="preview-title")
            yield Sparkline([], id="preview-spark", summary_function=max)
        yield StatusBar(id="status")
        yield KeyFooter()

    AUTO_FOCUS = "#experiments"

    def on_mount(self) -> None:
        self.refresh_view()

    # -- data ------------------------------------------------------------------------------

    @on(DataChanged)
    def data_changed(self, message: DataChanged) -> None:
        changed = {(u.db, exp) for u in message.updates for exp in u.experiments}
        if any(u.reset for u in message.updates):
            self.spark_due |= {s.key for s in self.host.monitor.summaries()}
        self.spark_due |= changed
        if changed - self.listed:
            # A new experiment (a training process just started) is shown at once, not with
            # the next paced redraw: it is what the user is waiting for.
            self.listed |= changed
            self.show_now(changed)
            return
        if self.spark_due and (message.heartbeat or not self.host.settings.live):
            self.call_after_refresh(self.load_sparks)
        if message.heartbeat:
            self.beats += 1
            # Only times that can change within a minute need redrawing every second.
            recent = self.host.now() - timedelta(minutes=2)
            changed |= {
                s.key
                for s in self.host.monitor.summaries()
                if s.last_activity is None or s.last_activity > recent
            }
            if not self.beats % 60:
                self.pending = None
            elif self.pending is not None:
                self.pending |= changed
            self.background_pace.request()
            return
        self.show_later(changed)

    def show_later(self, changed: set[Key] | None) -> None:
        """Redraw these experiments' rows (None: the whole list) for new data: at once after a
        quiet spell, else with the next redraw. A DataTable repaints all its lines on any change:
        a redraw for each of a fast writer's changes costs CPU, a few a second look the same."""
        if changed is None:
            self.pending = None
        elif self.pending is not None:
            self.pending |= changed
        self.list_pace.request()

    def show_now(self, changed: set[Key] | None) -> None:
        """Redraw these experiments' rows now, with whatever a paced redraw was waiting for."""
        self.list_pace.cancel()
        if changed is None:
            self.pending = None
        elif self.pending is not None:
            self.pending |= changed
        self._show_pending()

    def _show_background(self) -> None:
        if self.list_pace.timer is None:  # else the paced redraw due shortly draws it all
            self._show_pending()

    def _show_pending(self) -> None:
        pending, self.pending = self.pending, set()
        self.refresh_view(pending)

    def catch_up(self) -> None:
        self.spark_due |= {s.key for s in self.host.monitor.summaries()}
        self.refresh_view()
        self.load_sparks()

    def shown_summaries(self) -> list[ExperimentSummary]:
        now = self.host.now()
        summaries = self.host.monitor.summaries()
        query = self.filter_query
        if query.is_empty:
            return sort_summaries(summaries, now)
        if query.needs_config:
            asked = set().union(*self.configs_reading.values())
            missing = [s.key for s in summaries if s.key not in self.configs and s.key not in asked]
            if missing:
                self.load_configs(missing)
        configs = self.configs if query.needs_config else {}
        kept = [s for s in summaries if query.matches(s, now, configs.get(s.key))]
        return sort_summaries(kept, now)

    def load_configs(self, keys: list[Key]) -> None:
        databases = self.host.monitor.databases
        worker = self.read_configs([(key, databases.get(key[0])) for key in keys])
        self.configs_reading[worker] = set(keys)

    @read_worker("configs", "read configs", exclusive=False)
    def read_configs(self, asked: list[tuple[Key, MetricsDatabase | None]]) -> None:
        configs: dict[Key, Mapping[str, Any] | None] = {}
        for key, database in asked:
            view = database.config(key[1]) if database else None
            ok = view is not None and view.ok and isinstance(view.data, dict | list)
            configs[key] = flatten(view.data) if ok and view else None
        reply(self, ConfigsRead(configs))

    @on(ConfigsRead)
    def show_configs(self, message: ConfigsRead) -> None:
        self.configs.update(message.configs)
        self.refresh_view()

    def refresh_view(self, changed: set[Key] | None = None) -> None:
        if changed is None:
            self.pending = set()  # every row is drawn now
        app = self.host
        table = self.query_one(ExperimentTable)
        table.show_db = len(app.monitor.databases) > 1
        loaded = app.first_read_done()  # before that, summaries are half read
        if loaded and changed is None:
            self.listed = {s.key for s in app.monitor.summaries()}
        matching = self.shown_summaries() if loaded else []
        summaries = matching[:MAX_ROWS]
        table.show(summaries, app.now(), None if changed is None else changed.__contains__)
        more = self.query_one("#more", Static)
        more.display = len(matching) > MAX_ROWS
        if more.display:
            more.update(
                f"showing the first {MAX_ROWS:,} of {len(matching):,} experiments: "
                "narrow them with / (e.g. status:running, agent:NAME)"
            )
        empty = self.query_one("#empty", Static)
        empty.display = not summaries
        table.display = bool(summaries)
        if not summaries:
            empty.update(self.empty_message() if loaded else Text("Reading…", style="dim"))
        self.show_groups(matching)
        self.show_status()
        self.show_preview()

    def empty_message(self) -> Text:
        if self.query_text and self.host.monitor.summaries():
            return Text(f"No experiment matches “{clean_text(self.query_text)}” (Esc clears)")
        lines = Text()
        for status in self.host.monitor.statuses():
            if source_names.is_host(status.path) and status.state is SourceState.OK:
                continue  # a connected host: its sources say the rest
            path = clean_text(source_names.name(status.path), 300)
            if status.state is SourceState.WAITING:
                lines.append("Waiting for ", style="bold yellow")
                lines.append(path)
                lines.append(f"\n  {status.message}\n", style="dim")
            elif status.state is SourceState.OK:
                lines.append("No experiments yet in ", style="bold")
                lines.append(f"{path}\n  velora has created the database; training has not ")
                lines.append("started an experiment\n")
            elif status.state in (SourceState.LOCKED, SourceState.NOT_RESPONDING):
                lines.append(f"{status.state.capitalize()}: ", style="bold magenta")
                lines.append(f"{path}\n  {clean_text(status.message, 300)}\n")
            else:
                lines.append("Cannot read ", style="bold red")
                lines.append(f"{path}\n  {clean_text(status.message, 300)}\n")
        return lines

    def show_preview(self) -> None:
        key = self.query_one(ExperimentTable).selected_key
        summary = self.host.monitor.summary(key) if key else None
        title = self.query_one("#preview-title", Line)
        spark = self.query_one("#preview-spark", Sparkline)
        if summary is None:
            title.show("")
            spark.data = []
            return
        line = Text(no_wrap=True, overflow="ellipsis")
        line.append(f"#{summary.id} ", style="bold")
        line.append(clean_text(summary.agent), style="bold")
        line.append(" · ")
        line.append(clean_text(summary.env))
        count = episode_count(summary, planned=False)
        line.append(f"  reward (moving avg) over {count} episodes", style="dim")
        line.append(f"  best {best_reward(summary)}")
        line.append(f"  last episode {ago(summary.last_activity, self.host.now())}", style="dim")
        title.show(line)
        values = self.query_one(ExperimentTable).sparks.get(summary.key, ())
        data = [v for v in values if math.isfinite(v)]  # Sparkline fails on NaN
        if data != spark.data:
            spark.data = data

    def spark_window(self) -> set[Key]:
        """Rows worth a sparkline now: around the cursor (and the top of the list)."""
        table = self.query_one(ExperimentTable)
        around = max(0, table.cursor_row - SPARK_WINDOW)
        return set(table.order[:SPARK_WINDOW]) | set(
            table.order[around : table.cursor_row + SPARK_WINDOW]
        )

    def load_sparks(self) -> None:
        due = self.spark_due & self.spark_window()
        if not due:
            return
        self.spark_due -= due
        databases = self.host.monitor.databases
        asked = {key: database for key in due if (database := databases.get(key[0])) is not None}
        self.sparks_reading[self.read_sparks(asked)] = due

    @read_worker("sparks", "read sparklines", exclusive=False)
    def read_sparks(self, asked: dict[Key, MetricsDatabase]) -> None:
        """The moving-average reward at SPARK_POINTS episodes spread over each run: a seek
        each, so the sparklines of runs of millions of episodes cost what short ones do."""
        sparks = {
            key: [row.reward_moving_avg for row in database.sample(key[1], SPARK_POINTS)]
            for key, database in asked.items()
        }
        reply(self, SparksRead(sparks))

    @on(SparksRead)
    def show_sparks(self, message: SparksRead) -> None:
        self.query_one(ExperimentTable).sparks.update(message.sparks)
        if self.pending is not None:
            self.pending |= set(message.sparks)
        self.background_pace.request()

    def worker_ended(self, worker: Worker[Any], state: WorkerState) -> None:
        """A read that ended without its message (failed: reported by ReportsWorkerFailures;
        or cancelled) hands its keys back, so they are asked for again."""
        self.configs_reading.pop(worker, None)
        sparks = self.sparks_reading.pop(worker, None)
        if sparks and state is not WorkerState.SUCCESS:
            self.spark_due |= sparks

    # -- actions ---------------------------------------------------------------------------

    @on(DataTable.RowHighlighted)
    def highlighted(self) -> None:
        self.show_preview()
        if self.spark_due:
            self.load_sparks()

    @on(DataTable.RowSelected)
    def selected(self) -> None:
        self.action_open()

    def action_open(self) -> None:
        key = self.query_one(ExperimentTable).selected_key
        if key is not None:
            self.post_message(OpenExperiment(key))

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = True
        box.focus()

    @on(Input.Changed, "#filter")
    def filter_changed(self, event: Input.Changed) -> None:
        self.query_text = event.value
        error = self.query_one("#filter-error", Static)
        try:
            self.filter_query = parse_query(event.value)
        except FilterError as exc:
            error.update(Text(clean_text(str(exc), 200), style="bold red"))
            error.display = True
            return
        error.display = False
        # Typing fast rebuilds the list once, not once per key.
        if self.filter_timer is not None:
            self.filter_timer.stop()
        self.filter_timer = self.set_timer(FILTER_DELAY, self.refresh_view)

    @on(Input.Submitted, "#filter")
    def filter_done(self) -> None:
        self.query_one(ExperimentTable).focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.value = ""
        box.display = False
        self.query_one("#filter-error").display = False
        self.query_text = ""
        self.filter_query = parse_query("")
        self.refresh_view()
        self.query_one(ExperimentTable).focus()

    def action_mark(self) -> None:
        table = self.query_one(ExperimentTable)
        key = table.selected_key
        if key is not None:
            table.toggle_mark(key)
            self.refresh_view({key})
            table.action_cursor_down()

    def marked(self) -> list[Key]:
        return list(self.query_one(ExperimentTable).marked)

    def action_compare(self) -> None:
        marked = self.marked()
        if len(marked) < 2:
            self.notify("Mark two or more experiments with Space to compare them", markup=False)
            return
        from velora_tui.tui.screens.compare import CompareScreen

        self.app.push_screen(CompareScreen(marked))

    def action_diff(self) -> None:
        marked = self.marked()
        if len(marked) != 2:
            self.notify(
                "Mark exactly two experiments with Space to diff their configs", markup=False
            )
            return
        from velora_tui.tui.screens.diff import DiffScreen

        self.app.push_screen(DiffScreen(marked[0], marked[1]))

    def select(self, key: Key) -> None:
        self.query_one(ExperimentTable).select_key(key)

    # -- groups (data/groups.py; the group table, chart and sweep screens) ----------------

    def show_groups(self, matching: list[ExperimentSummary]) -> None:
        """When grouping: the groups of the experiments the filter keeps, in place of the list
        (a run is grouped once its config is read; the configs are read here when missing)."""
        if self.picker_due and all(s.key in self.configs for s in matching):
            self.picker_due = False
            self.call_later(self.action_group_keys)
        groups_table = self.query_one(GroupTable)
        groups_table.display = self.grouping and bool(matching)
        self.query_one("#preview").display = not self.grouping
        if not self.grouping:
            return
        self.query_one(ExperimentTable).display = False
        self.query_one("#more", Static).display = False
        self.groups, missing = self.make_groups(matching)
        now = self.host.now()
        sparks = self.query_one(ExperimentTable).sparks
        targets = Targets(self.host.monitor.databases, self.host.settings.targets)
        groups_table.show(self.groups, now, sparks, targets)  # and their episodes to target
        if missing:
            more = self.query_one("#more", Static)
            more.display = True
            more.update(f"reading the configs of {len(missing):,} experiments to group them…")
        self.load_group_sparks([run.key for group in self.groups for run in group.runs])

    def make_groups(
        self, matching: list[ExperimentSummary], by_figures: bool = True
    ) -> tuple[list[Group], list[Key]]:
        """The groups of the runs whose configs are read, and the runs still waiting for
        theirs (asked for here). `by_figures`: only the groups the filter's group terms keep."""
        asked = set().union(*self.configs_reading.values())
        missing = [s.key for s in matching if s.key not in self.configs]
        if unasked := [key for key in missing if key not in asked]:
            self.load_configs(unasked)
        known = [s for s in matching if s.key in self.configs]
        found = group_runs(known, self.configs, self.group_keys, self.group_cache)
        now = self.host.now()
        if by_figures and self.filter_query.on_groups:
            found = [g for g in found if self.filter_query.matches_group(g.figures(now))]
        return sort_groups(found, now, self.group_sort), missing

    def load_group_sparks(self, keys: list[Key]) -> None:
        """Sparklines of grouped runs: each once, and those with new episodes again at most
        once a second (as the list's own)."""
        again = time.monotonic() - self.group_sparks_at >= 1.0
        due = [
            k for k in keys if k not in self.group_sparks_asked or (again and k in self.spark_due)
        ]
        databases = self.host.monitor.databases
        asked = {k: db for k in due[:SPARK_WINDOW] if (db := databases.get(k[0])) is not None}
        if not asked or any(w.group == "sparks" for w in self.sparks_reading):
            return
        self.group_sparks_asked |= set(asked)
        self.group_sparks_at = time.monotonic()
        self.spark_due -= set(asked)
        self.sparks_reading[self.read_sparks(asked)] = set(asked)

    def set_grouping(self, on: bool, keys: list[str] | None = None) -> None:
        self.grouping = on
        if keys is not None and keys != self.group_keys:
            self.group_keys = keys
            self.group_cache = {}
        self.refresh_view()
        if on:
            self.query_one(GroupTable).focus()
        else:
            self.query_one(ExperimentTable).focus()

    def action_group(self) -> None:
        """Seed grouping on, or grouping off (`G` groups by chosen keys instead)."""
        self.set_grouping(not self.grouping, None if self.grouping else [])

    def action_group_keys(self) -> None:
        from velora_tui.tui.screens.groups import KeyPicker

        summaries = self.shown_summaries()
        if any(s.key not in self.configs for s in summaries):
            asked = set().union(*self.configs_reading.values())
            unasked = [s.key for s in summaries if s.key not in self.configs and s.key not in asked]
            if unasked:
                self.load_configs(unasked)
            self.picker_due = True
            return
        varied = varied_keys(self.configs.get(s.key) for s in summaries)

        def chosen(keys: list[str] | None) -> None:
            if keys is not None:
                self.set_grouping(True, keys)

        self.app.push_screen(KeyPicker(varied, self.group_keys), chosen)

    def action_group_sort(self) -> None:
        names = [name for name, _ in SORTS]
        self.group_sort = names[(names.index(self.group_sort) + 1) % len(names)]
        self.notify(f"Groups sorted by {self.group_sort}", timeout=2, markup=False)
        self.refresh_view()

    def action_sweep(self) -> None:
        from velora_tui.tui.screens.sweep import SweepScreen

        matching = self.shown_summaries()
        groups, missing = self.make_groups(matching)
        if missing:
            self.notify(
                f"Reading the configs of {len(missing):,} experiments: press w again", markup=False
            )
            return
        if not groups:
            self.notify("No experiments to group", markup=False)
            return
        scope = f"the {len(matching):,} experiments"
        scope += f" matching “{clean_text(self.query_text, 40)}”" if self.query_text else ""
        targets = Targets(self.host.monitor.databases, self.host.settings.targets)
        self.app.push_screen(SweepScreen(groups, scope, self.current_groups, targets))

    @on(OpenGroups)
    def open_groups(self, message: OpenGroups) -> None:
        from velora_tui.tui.screens.groups import GroupChartScreen

        self.app.push_screen(GroupChartScreen(message.groups, self.current_groups))

    def current_groups(self) -> tuple[list[Group], list[Key]]:
        """The list's runs grouped now, as `g` shows them, and the runs whose configs are
        still read: a group chart takes in the runs that join its groups later."""
        return self.make_groups(self.shown_summaries(), by_figures=False)

    @on(GroupTable.Changed)
    def group_rows_changed(self) -> None:
        self.query_one(GroupTable).show(
            self.groups, self.host.now(), self.query_one(ExperimentTable).sparks
        )
