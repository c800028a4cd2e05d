"""`?`: every key the app knows, in one place."""

from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Static

KEYS = (
    ("Anywhere", ""),
    ("?", "this help"),
    ("q", "quit"),
    ("ctrl+p", "command palette: open an experiment, export CSV, screenshot, theme…"),
    ("r", "re-read every database from scratch"),
    ("Experiment list", ""),
    ("↑ ↓  j k", "move"),
    ("Enter", "open the experiment"),
    ("/", "filter (Enter: done, Esc: clear). Words match agent, env or id; terms:"),
    ("", "agent:X env:X id:3 status:running|stalled|finished|empty"),
    ("", "reward>100 best>=450 avg<0 episodes>1000 (> >= < <= = !=)"),
    ("", "cfg.train_params.batch_size=64 cfg.env=CartPole-v1 (config values)"),
    ("Space", "mark / unmark for comparison"),
    ("c", "compare the marked experiments' reward curves"),
    ("d", "diff the configs of two marked experiments (a: all keys / differences)"),
    ("Experiment", ""),
    ("Esc", "back to the list"),
    ("1 2 3  Tab", "Charts, Episodes, Config tabs"),
    ("f  End", "follow new episodes (moving up pauses following)"),
    ("+ -", "charts: more / less smoothing (debiased moving average, 0 to 0.999)"),
    ("x", "charts: x axis: episode, environment steps, time since start"),
    ("l", "charts: log scale for the losses"),
    ("/", "search the config; Enter: next match, Esc: back to the tree"),
    ("Mouse", "click rows and tabs, scroll with the wheel"),
)


def key_table() -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column()
    for key, what in KEYS:
        if not what:
            table.add_row("")
            table.add_row(f"[b]{key}[/b]", "")
        else:
            table.add_row(key, what)
    return table


class HelpScreen(Screen[None]):
    """A full screen, made once and kept (App.SCREENS): the screen under it is neither drawn
    nor kept live while it shows, and it is not composed and measured anew each time."""

    BINDINGS = [
        Binding("escape,q,question_mark", "dismiss", "Close"),
    ]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; background: $background; }
    HelpScreen VerticalScroll {
        width: 84; max-width: 100%; height: auto; max-height: 90%;
        border: round $accent; background: $surface; padding: 0 1;
    }
    """

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static("[b]velora-tui keys[/b]  (Esc closes)")
            yield Static(key_table())

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss()
