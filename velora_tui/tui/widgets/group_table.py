"""The grouped list: one row per group (the seeds of a config, or the runs sharing chosen key
values), each unfolding into its runs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, cast

from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.message_pump import MessagePump
from textual.widgets import DataTable
from textual.worker import Worker, WorkerState

from velora_tui.data.cleaning import clean_text, format_number
from velora_tui.data.database import MetricsDatabase
from velora_tui.data.group_reads import ReachedReader
from velora_tui.data.groups import Group, Stat, spark_curve
from velora_tui.data.records import ExperimentSummary, Key, RunStatus
from velora_tui.data.seed_stats import (
    NO_INTERVAL,
    WIDE_MARK,
    WIDE_NOTE,
    Estimate,
    episodes_text,
)
from velora_tui.data.targets import target_for
from velora_tui.report.format import PENDING, duration, episode_count
from velora_tui.tui.messages import OpenExperiment
from velora_tui.tui.render import STATUS_GLYPHS, number_cell, spark, status_cell, text_cell
from velora_tui.tui.workers import ReportsWorkerFailures, read_worker, reply

COLUMNS = (
    ("fold", " "),
    ("group", "Group / run"),
    ("runs", "Runs"),
    ("episodes", "Episodes"),
    ("final", "Final reward"),
    ("final_iqm", "Final IQM [95% CI]"),
    # Before the best reward's: with them, the row fits 120 columns (the rest scrolls).
    ("eta", "ETA"),
    ("spark", "Mean reward"),
    ("best", "Best"),
    ("best_iqm", "Best IQM [95% CI]"),
    ("to_target", "Episodes to target"),
)
SPARK_WIDTH = 14
GROUP_NAME_WIDTH = 40
FOLD_HELP = "groups: unfold (its runs) / fold a group"
SWEEP_HELP = "sweep table: a row per group of the list (as filtered), by final reward"
OPEN_GROUP_HELP = "open the highlighted group's chart, or the highlighted run"


@dataclass
class OpenGroups(Message):
    """Show these groups' chart (one group, or the marked ones overlaid)."""

    groups: list[Group]


@dataclass(frozen=True, slots=True)
class RowRef:
    """What a row of the table is: a group, or one of its runs."""

    group: str  # Group.ident
    run: Key | None = None


# What the group figures' marks mean: in the help (and the sweep table's and charts' legends).
FIGURE_HELP = (
    ("IQM [a, b]", "interquartile mean over the runs, [95% bootstrap interval] (docs/groups.md)"),
    (NO_INTERVAL, "one run: no spread, no interval"),
    (WIDE_MARK, WIDE_NOTE.removeprefix(WIDE_MARK).strip()),
    ("P(1st beats)", "compared groups: the chance a run of the first beats a run of this one"),
    (
        "812 [640, ∞] (4/5)",
        "episodes to target: IQM [95% CI] of the episodes until the moving average reached the"
        " env's target (settings, --target, else Gymnasium's), runs that reached it; ∞: not",
    ),
)


def stat_cell(stat: Stat, pending: bool = False) -> Text:
    """`450.03 ± 52.25`; a single run has no spread: its value alone."""
    if pending:
        return Text(PENDING, justify="right")
    if not stat.count:
        return Text("-", justify="right", style="dim")
    text = Text(justify="right")
    text.append(format_number(stat.mean))
    if stat.count > 1:
        text.append(f" ± {format_number(stat.std)}", style="dim")
    return text


def interval_cell(estimate: Estimate, pending: bool = False, number: Any = format_number) -> Text:
    """`473.25 [384.18, 482.59]`, the interval dim; `—` for one run; the wide mark for two."""
    if pending:
        return Text(PENDING, justify="right")
    if not estimate.count:
        return Text("-", justify="right", style="dim")
    text = Text(justify="right")
    text.append(number(estimate.value))
    if not estimate.has_interval:
        text.append(f" {NO_INTERVAL}", style="dim")
        return text
    text.append(f" [{number(estimate.low)}, {number(estimate.high)}]", style="dim")
    text.append(WIDE_MARK if estimate.wide else " ", style="bold yellow")
    return text


def to_target_cell(group: Group) -> Text:
    """`812 [640, ∞] (4/5)`; `-` dim where no run has a target (or it is not read yet)."""
    estimate = group.to_target()
    if estimate is None:
        return Text("-", justify="right", style="dim")
    if estimate.low == float("inf"):
        return Text(f"not reached ({group.reached_count()}/{estimate.count})", style="dim")
    text = interval_cell(estimate, number=episodes_text)
    text.append(f"({group.reached_count()}/{estimate.count})", style="dim")
    return text


@dataclass(frozen=True, slots=True)
class Targets:
    """Where the runs' episodes to their targets are read from, and the user's targets."""

    databases: Mapping[Path, MetricsDatabase]
    overrides: Mapping[str, float] = field(default_factory=dict)


@dataclass
class ReachedRead(Message, bubble=False):
    """Runs' episodes to their targets, read in a worker (inf: not reached)."""

    found: dict[Key, float]


class EpisodesToTarget:
    """The episodes each run took to reach its env's target, as read so far (inf: not yet),
    for the groups a table shows (the grouped list, the sweep table). Its owner reads them in
    a worker, one read at a time: `due` says what to read, `found` takes the answer, `ended`
    whether to read again."""

    def __init__(self) -> None:
        self.reader = ReachedReader()
        self.reached: dict[Key, float] = {}
        self.run_targets: dict[Key, float] = {}
        self.no_target: set[Key] = set()  # runs whose env has no target (an env never changes)
        self.targets: Targets | None = None
        self.reading = False
        self.read_again = False

    def use(self, targets: Targets | None) -> None:
        if targets is not None and targets != self.targets:
            self.targets = targets
            self.run_targets.clear()  # the user's targets may have changed
            self.no_target.clear()

    def apply(self, groups: Sequence[Group]) -> None:
        """Each group's runs' episodes to their targets, as far as they are read."""
        for group in groups:
            group.set_reached(self.reached, self.run_targets)

    def due(self, groups: Sequence[Group]) -> list[tuple[ExperimentSummary, float]]:
        """The runs to read now, each with its target (only what is new: a run that reached
        its target is not read again); none while a read is under way (asked again after)."""
        if self.targets is None:
            return []
        if self.reading:
            self.read_again = True
            return []
        runs = []
        for group in groups:
            for run in group.runs:
                target = self.run_targets.get(run.key)
                if target is None and run.key not in self.no_target:
                    target = target_for(run.env, self.targets.overrides)
                    if target is None:
                        self.no_target.add(run.key)
                    else:
                        self.run_targets[run.key] = target
                if target is not None:
                    runs.append((run, target))
        if runs:
            self.reading, self.read_again = True, False
        return runs

    def read(self, runs: list[Any]) -> dict[Key, float]:
        """In the worker: the runs' episodes to their targets now."""
        assert self.targets is not None
        return self.reader.read(self.targets.databases, runs)

    def found(self, found: dict[Key, float]) -> bool:
        """Take what a read found; whether anything changed."""
        if found == {key: self.reached.get(key) for key in found}:
            return False
        self.reached.update(found)
        return True

    def ended(self) -> bool:
        """The read ended; whether to read again (more was asked meanwhile)."""
        self.reading = False
        return self.read_again


class ShowsEpisodesToTarget(ReportsWorkerFailures):
    """For a node showing groups (`groups`) with their episodes to the target (`to_target`):
    reads them in a worker, one read at a time, and shows them when read (`show_reached`)."""

    groups: Sequence[Group]
    to_target: EpisodesToTarget

    def show_reached(self) -> None:
        """Show the groups again: episodes to the target were read."""
        raise NotImplementedError

    def load_reached(self) -> None:
        """Read what is new of the runs shown (EpisodesToTarget.due)."""
        if runs := self.to_target.due(self.groups):
            self.read_reached(runs)

    @read_worker("reached", "read the episodes to the targets", exclusive=False)
    def read_reached(self, runs: list[Any]) -> None:
        reply(cast(MessagePump, self), ReachedRead(self.to_target.read(runs)))

    def on_reached_read(self, message: ReachedRead) -> None:
        if self.to_target.found(message.found):
            self.show_reached()

    def worker_ended(self, worker: Worker[Any], state: WorkerState) -> None:
        if worker.group == "reached" and self.to_target.ended():
            self.load_reached()


def runs_cell(group: Group, now: datetime) -> Text:
    """`5 (1 running, 1 stalled, 3 done)`: the runs, and how many are in each state (a run
    with no episode yet counts in the first number alone)."""
    counts = group.counts(now)
    text = Text(f"{len(group.runs)}")
    words = (
        (RunStatus.RUNNING, "running"),
        (RunStatus.STALLED, "stalled"),
        (RunStatus.ENDED, "ended"),
        (RunStatus.FINISHED, "done"),
    )
    parts = [(counts[status], word, STATUS_GLYPHS[status][1]) for status, word in words]
    shown = [(count, word, style) for count, word, style in parts if count]
    if shown:
        text.append(" (", style="dim")
        for index, (count, word, style) in enumerate(shown):
            if index:
                text.append(", ", style="dim")
            text.append(f"{count} {word}", style=style)
        text.append(")", style="dim")
    return text


class GroupTable(ShowsEpisodesToTarget, DataTable[Text]):
    BINDINGS = [
        Binding("enter", "open", "Open", tooltip=OPEN_GROUP_HELP),
        Binding("right,l", "unfold", "Fold", key_display="→/←", tooltip=FOLD_HELP),
        Binding("left,h", "fold", "Fold", show=False, key_display="→/←", tooltip=FOLD_HELP),
        Binding("space", "mark", "Mark", tooltip="groups: mark / unmark a group to compare"),
        Binding(
            "c", "compare", "Compare", tooltip="groups: the marked groups' means and bands overlaid"
        ),
        Binding("w", "screen.sweep", "Sweep", tooltip=SWEEP_HELP),
        Binding("up,k", "cursor_up", "Up", show=False, tooltip="move in the list"),
        Binding("down,j", "cursor_down", "Down", show=False, tooltip="move in the list"),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.groups: list[Group] = []
        self.refs: list[RowRef] = []
        self.unfolded: set[str] = set()
        self.marked: list[str] = []
        self.rendered: dict[RowRef, list[Text]] = {}
        # Episodes to the targets: read in a worker, one read at a time, again when asked.
        self.to_target = EpisodesToTarget()

    def on_mount(self) -> None:
        for key, label in COLUMNS:
            self.add_column(label, key=key, width=SPARK_WIDTH if key == "spark" else None)

    # -- rows ------------------------------------------------------------------------------

    def group_cells(
        self, group: Group, now: datetime, sparks: Mapping[Key, Sequence[float]]
    ) -> list[Text]:
        fold = "▾" if group.ident in self.unfolded else "▸"
        marked = group.ident in self.marked
        low, high = group.episodes()
        eta = group.eta(now)
        curve = spark_curve([(r.episodes, sparks.get(r.key, ())) for r in group.runs])
        name = Text(no_wrap=True, overflow="ellipsis")
        name.append(clean_text(group.label(), GROUP_NAME_WIDTH), style="bold")
        return [
            Text.assemble(("▶" if marked else "", "bold magenta"), (fold, "bold")),
            name,
            runs_cell(group, now),
            Text(f"{low}" if low == high else f"{low}-{high}", justify="right"),
            stat_cell(group.final()),
            interval_cell(group.final_iqm()),
            Text(duration(eta) if eta is not None else "-", justify="right", style="dim"),
            Text(spark(curve, SPARK_WIDTH), style="cyan"),
            stat_cell(group.best(), pending=not group.scanned),
            interval_cell(group.best_iqm(), pending=not group.scanned),
            to_target_cell(group),
        ]

    def run_cells(
        self, run: ExperimentSummary, now: datetime, sparks: Mapping[Key, Sequence[float]]
    ) -> list[Text]:
        where = f"{run.db.parent.name}/" if len({r.db for r in self._all_runs()}) > 1 else ""
        name = Text("  ", no_wrap=True, overflow="ellipsis")
        name.append(f"#{where}{run.id} ")
        name.append_text(text_cell(run.agent, 20, "dim"))
        eta = run.eta() if run.status(now) is RunStatus.RUNNING else None
        return [
            Text.assemble(" ", status_cell(run.status(now))),
            name,
            Text(""),
            Text(episode_count(run), justify="right"),
            number_cell(run.reward_moving_avg),
            Text(""),
            Text(duration(eta) if eta is not None else "", justify="right", style="dim"),
            Text(spark(sparks.get(run.key, ()), SPARK_WIDTH), style="cyan"),
            number_cell(run.best_reward) if run.scanned else Text(PENDING, justify="right"),
            Text(""),
            Text(episodes_text(self.to_target.reached[run.key]), justify="right")
            if run.key in self.to_target.reached
            else Text(""),
        ]

    def _all_runs(self) -> list[ExperimentSummary]:
        return [run for group in self.groups for run in group.runs]

    def show(
        self,
        groups: Sequence[Group],
        now: datetime,
        sparks: Mapping[Key, Sequence[float]],
        targets: Targets | None = None,
    ) -> None:
        """Show these groups in this order, the unfolded ones with their runs. `targets`: where
        to read the runs' episodes to their env's target (read in a thread; shown when read)."""
        self.groups = list(groups)
        self.to_target.use(targets)
        self.to_target.apply(self.groups)
        self.load_reached()
        rows: list[tuple[RowRef, list[Text]]] = []
        for group in groups:
            rows.append((RowRef(group.ident), self.group_cells(group, now, sparks)))
            if group.ident in self.unfolded:
                rows.extend(
                    (RowRef(group.ident, run.key), self.run_cells(run, now, sparks))
                    for run in group.runs
                )
        refs = [ref for ref, _ in rows]
        selected = self.selected
        with self.app.batch_update():
            if refs != self.refs:
                self.clear()
                for index, (_, cells) in enumerate(rows):
                    self.add_row(*cells, key=str(index))
                self.refs = refs
                if selected in refs:
                    self.move_cursor(row=refs.index(selected), animate=False)
                elif selected is not None and RowRef(selected.group) in refs:
                    self.move_cursor(row=refs.index(RowRef(selected.group)), animate=False)
            else:
                for index, (ref, cells) in enumerate(rows):
                    before = self.rendered.get(ref, [])
                    for column, ((key, _), value) in enumerate(zip(COLUMNS, cells, strict=True)):
                        if column >= len(before) or before[column] != value:
                            self.update_cell(str(index), key, value, update_width=True)
        self.rendered = dict(rows)

    def show_reached(self) -> None:
        self.refresh_rows()

    @property
    def selected(self) -> RowRef | None:
        if not 0 <= self.cursor_row < len(self.refs):
            return None
        return self.refs[self.cursor_row]

    def group_of(self, ref: RowRef | None) -> Group | None:
        if ref is None:
            return None
        return next((g for g in self.groups if g.ident == ref.group), None)

    def refresh_rows(self) -> None:
        """Fold, unfold or mark changed: the rows anew from the groups last shown."""
        self.post_message(self.Changed())

    class Changed(Message):
        """The rows to show changed (folded, unfolded, marked): the screen shows them again."""

    # -- actions ---------------------------------------------------------------------------

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """A click on the highlighted row: open it (the list's own handler is for its table)."""
        event.stop()
        self.action_open()

    def action_unfold(self) -> None:
        ref = self.selected
        if ref is not None and ref.group not in self.unfolded:
            self.unfolded.add(ref.group)
            self.refresh_rows()

    def action_fold(self) -> None:
        ref = self.selected
        if ref is not None and ref.group in self.unfolded:
            self.unfolded.discard(ref.group)
            self.refresh_rows()

    def action_mark(self) -> None:
        ref = self.selected
        if ref is None:
            return
        if ref.group in self.marked:
            self.marked.remove(ref.group)
        else:
            self.marked.append(ref.group)
        self.refresh_rows()
        self.action_cursor_down()

    def action_open(self) -> None:
        ref = self.selected
        group = self.group_of(ref)
        if ref is None or group is None:
            return
        if ref.run is not None:
            self.post_message(OpenExperiment(ref.run))
        else:
            self.post_message(OpenGroups([group]))

    def action_compare(self) -> None:
        marked = [g for ident in self.marked for g in self.groups if g.ident == ident]
        if len(marked) < 2:
            self.app.notify("Mark two or more groups with Space to compare them", markup=False)
            return
        self.post_message(OpenGroups(marked))

    def select_group(self, ident: str) -> None:
        ref = RowRef(ident)
        if ref in self.refs:
            self.move_cursor(row=self.refs.index(ref), animate=False)
