"""The sweep table: one row per group, one column per varied key, best final reward first."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Header, Static

from velora_tui.data.cleaning import clean_text
from velora_tui.data.groups import Group, Joining, short_keys, sort_groups
from velora_tui.data.seed_stats import WIDE_NOTE
from velora_tui.tui.messages import DataChanged
from velora_tui.tui.screens.base import VeloraScreen
from velora_tui.tui.widgets.group_table import (
    EpisodesToTarget,
    OpenGroups,
    ShowsEpisodesToTarget,
    Targets,
    interval_cell,
    runs_cell,
    stat_cell,
    to_target_cell,
)
from velora_tui.tui.widgets.key_footer import KeyFooter
from velora_tui.tui.widgets.status_bar import StatusBar

if TYPE_CHECKING:
    from velora_tui.data.groups import Regroup

SWEEP_HELP = "the sweep table: a row per group, a column per varied key, best final reward first"


class SweepScreen(ShowsEpisodesToTarget, VeloraScreen):
    BINDINGS = [
        Binding("escape", "back", "Back", tooltip="back to the list"),
        Binding("enter", "open", "Chart", tooltip="sweep table: the highlighted group's chart"),
    ]

    def __init__(
        self,
        groups: list[Group],
        scope: str,
        regroup: Regroup | None = None,
        targets: Targets | None = None,
    ) -> None:
        super().__init__()
        self.groups = groups
        # Each run's episodes to its target (the last column), read here as the list reads
        # them: the groups are made afresh for this table.
        self.to_target = EpisodesToTarget()
        self.to_target.use(targets)
        self.regroup = regroup  # for a group's chart (GroupChartScreen)
        self.joining = Joining(regroup)  # a new seed of a group's config joins its row
        self.scope = scope  # what the groups are of: the whole list, or the filtered part
        self.keys = list(dict.fromkeys(key for group in groups for key, _ in group.name))
        self.order: list[Group] = []

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="◆")
        yield Static(id="sweep-title")
        yield DataTable[Text](id="sweep", cursor_type="row", zebra_stripes=True)
        yield StatusBar(id="status")
        yield KeyFooter()

    def on_mount(self) -> None:
        table = self.query_one("#sweep", DataTable)
        shorts = short_keys(self.keys)
        table.add_column("#", key="rank")
        for key in self.keys:
            # Text: a str label is read as markup, and the keys are the configs'.
            table.add_column(Text(clean_text(shorts[key], 30)), key=f"k:{key}")
        for key, label in (
            ("runs", "Runs"),
            ("episodes", "Episodes"),
            ("final", "Final reward"),
            ("final_iqm", "Final IQM [95% CI]"),
            ("best", "Best reward"),
            ("best_iqm", "Best IQM [95% CI]"),
            ("to_target", "Episodes to target"),
        ):
            table.add_column(label, key=key)
        title = Text(no_wrap=True, overflow="ellipsis")
        title.append(f"{len(self.groups)} groups", style="bold")
        title.append(f" of {self.scope}, by final reward (each run's moving average at its end,")
        title.append(" mean ± std over the runs; IQM: interquartile mean, [95% bootstrap")
        title.append(" interval], — one run")
        if any(g.final_iqm().wide or g.best_iqm().wide for g in self.groups):
            title.append(f"; {WIDE_NOTE}")
        title.append(")")
        self.query_one("#sweep-title", Static).update(title)
        self.show_rows()
        self.show_status()
        table.focus()

    def show_rows(self) -> None:
        table = self.query_one("#sweep", DataTable)
        now = self.host.now()
        self.to_target.apply(self.groups)
        self.load_reached()
        self.order = sort_groups(self.groups, now)
        cursor = table.cursor_row
        table.clear()
        for rank, group in enumerate(self.order, start=1):
            values = dict(group.name)
            low, high = group.episodes()
            table.add_row(
                Text(str(rank), justify="right"),
                *(Text(clean_text(values.get(key, "-"), 30)) for key in self.keys),
                runs_cell(group, now),
                Text(f"{low}" if low == high else f"{low}-{high}", justify="right"),
                stat_cell(group.final()),
                interval_cell(group.final_iqm()),
                stat_cell(group.best(), pending=not group.scanned),
                interval_cell(group.best_iqm(), pending=not group.scanned),
                to_target_cell(group),
            )
        if 0 <= cursor < len(self.order):
            table.move_cursor(row=cursor, animate=False)

    @on(DataChanged)
    def data_changed(self, message: DataChanged) -> None:
        touched = {(u.db, e) for u in message.updates for e in u.experiments}
        joined = self.joining.take_in(self.groups, touched)
        if joined or touched & {key for group in self.groups for key in group.keys}:
            self.show_rows()  # the groups' runs are the live summaries: their figures moved
        self.show_status()

    def catch_up(self) -> None:
        self.joining.take_in(self.groups, (), every=True)
        self.show_rows()

    def show_reached(self) -> None:
        self.show_rows()

    @on(DataTable.RowSelected)
    def selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open()

    def action_open(self) -> None:
        row = self.query_one("#sweep", DataTable).cursor_row
        if 0 <= row < len(self.order):
            self.post_message(OpenGroups([self.order[row]]))

    @on(OpenGroups)
    def open_groups(self, message: OpenGroups) -> None:
        from velora_tui.tui.screens.groups import GroupChartScreen

        self.app.push_screen(GroupChartScreen(message.groups, self.regroup))

    def action_back(self) -> None:
        self.dismiss()
