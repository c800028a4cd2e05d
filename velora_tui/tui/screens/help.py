"""`?`: every key the app knows, in one place.

The keys come from the BINDINGS of the app and of each screen and its views, the lists the
footers are built from: a key added or changed there is in the help too. A binding's `tooltip`
(or else its description) is its line; bindings with the same line share it (`1 2 3 tab`).
Only the filter's syntax is written out here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.dom import DOMNode
from textual.screen import Screen
from textual.widgets import Static

from velora_tui.tui.filtering import STATUSES
from velora_tui.tui.screens.compare import CompareScreen
from velora_tui.tui.screens.diff import DiffScreen
from velora_tui.tui.screens.experiment import ExperimentScreen
from velora_tui.tui.screens.experiments import ExperimentsScreen
from velora_tui.tui.screens.groups import GroupChartScreen
from velora_tui.tui.screens.sweep import SweepScreen
from velora_tui.tui.widgets.episode_table import EpisodeTable
from velora_tui.tui.widgets.experiment_table import ExperimentTable
from velora_tui.tui.widgets.group_table import FIGURE_HELP, GroupTable

# Where the keys are: a title, and the classes whose BINDINGS hold them (the app's come first).
SECTIONS: tuple[tuple[str, tuple[type[DOMNode], ...]], ...] = (
    ("Experiment list", (ExperimentTable, ExperimentsScreen)),
    ("Experiment", (ExperimentScreen, EpisodeTable)),
    ("Compare", (CompareScreen,)),
    ("Config diff", (DiffScreen,)),
    ("Groups (g in the list)", (GroupTable, GroupChartScreen, SweepScreen)),
)

FILTER_SYNTAX = (
    ("cartpole", "a word: part of the agent, env, id (#3) or database"),
    ("agent:neuro env:cart", "part of the name; agent=X the whole name, agent!=X not it"),
    ("status:running", f"{' | '.join(STATUSES)}; status!=finished"),
    (
        "reward>100 best>=450",
        "the last reward, best reward, avg (moving average), episodes and id take"
        " > >= < <= = != (: means =); NaN never matches",
    ),
    (
        "cfg.train_params.batch_size=64",
        "a config key (dotted): numbers compare as numbers, other values as text with = and !=;"
        " a missing key matches only !=",
    ),
    (
        "group.final>400 group.runs>=3",
        "grouped (g): a group's final (mean final reward), final_std, best, best_std, runs,"
        " running or episodes; the other terms choose the runs these are of",
    ),
    ('agent:"Neuro Flow"', "double quotes hold spaces; every term must hold"),
)

# What the list says of Slurm jobs (velora-tui slurm:, README "Slurm jobs").
SLURM_HELP = (
    (
        "slurm:  slurm:HOST",
        "your jobs (squeue --me, here or through ssh): the runs below each"
        " job's folder (--slurm-path)",
    ),
    (
        "Slurm job column",
        "RUNNING time left of its limit, PENDING (why), FAILED exit N, TIMEOUT,"
        " OUT_OF_MEMORY, CANCELLED...; 'ambiguous' when several jobs wrote one file",
    ),
    ("■ ended", "its job is over before its planned episodes: never 'stalled'"),
    ("status line", "slurm: N jobs (and why the first pends), or slurm: not responding"),
)

# A run's health (report/alerts.py; docs/health.md), as the list's Health column and the
# header say it; each also an alert, said once, when it happens while watching.
HEALTH_MARKS = (
    ("✔ solved", "the moving average reached the env's target (Gymnasium's, or settings.toml's)"),
    ("plateau", "no new best moving average for 500 episodes, before the target"),
    ("collapse", "the moving average lost half its gain and stayed down 100 episodes"),
    ("loss spike", "a critic or actor loss 10 robust sigmas from the median of its last 200"),
    ("entropy", "the entropy term fell below 10% of its peak, before the target"),
    ("slow", "steps per minute below half the run's own rate, over 3 minutes"),
    ("settings", "velora-tui settings: the file, and the thresholds in force"),
)

Row = tuple[str, str]  # keys, what they do


def key_rows(app: App[Any], bindings: Iterable[BindingType]) -> list[Row]:
    """One row per line of help, in the order of the bindings: each line's keys as the
    footer shows them, each once (a pair's two bindings both show `+/-`)."""
    rows: dict[str, list[str]] = {}
    for binding in Binding.make_bindings(bindings):
        what = binding.tooltip or binding.description
        if not what or binding.system:
            continue
        keys = rows.setdefault(what, [])
        shown = app.get_key_display(binding)
        if shown not in keys:
            keys.append(shown)
    return [(" ".join(keys), what) for what, keys in rows.items()]


def sections(app: App[Any]) -> list[tuple[str, list[Row]]]:
    """Every key of the app, section by section."""
    found = [("Anywhere", key_rows(app, type(app).BINDINGS))]
    for title, holders in SECTIONS:
        found.append((title, key_rows(app, [b for holder in holders for b in holder.BINDINGS])))
    return found


def help_tables(app: App[Any]) -> Group:
    """The keys, then the filter's syntax: two tables, each as wide as its own first column."""

    def table(*sections: tuple[str, Sequence[Row]]) -> Table:
        grid = Table.grid(padding=(0, 2))
        grid.add_column(no_wrap=True)
        grid.add_column()
        for title, rows in sections:
            if grid.row_count:
                grid.add_row("")
            grid.add_row(Text(title, style="bold"), "")
            for keys, what in rows:
                grid.add_row(Text(keys, style="bold cyan"), what)
        return grid

    return Group(
        table(*sections(app), ("Mouse", [("click, wheel", "select rows and tabs, scroll")])),
        Text(""),
        table(("Filter (/ in the list)", FILTER_SYNTAX)),
        Text(""),
        table(("Health", HEALTH_MARKS)),
        Text(""),
        table(("Group figures (g in the list)", FIGURE_HELP)),
        Text(""),
        table(("Slurm jobs (velora-tui slurm:)", SLURM_HELP)),
    )


class HelpScreen(Screen[None]):
    """A full screen, made once and kept (App.SCREENS): the screen under it is neither drawn
    nor kept live while it shows, and it is not composed and measured anew each time."""

    BINDINGS = [
        Binding("escape,q,question_mark", "dismiss", "Close"),
    ]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; background: $background; }
    HelpScreen VerticalScroll {
        width: 100; max-width: 100%; height: auto; max-height: 90%;
        border: round $accent; background: $surface; padding: 0 1;
    }
    """

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static("[b]velora-tui keys[/b]  (Esc closes)\n")
            yield Static(help_tables(self.app), id="help-keys")

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss()
