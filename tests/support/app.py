"""The app under Pilot: made on a file, waited on until its workers and paced views are done,
and read back (the list's cells, the tail's lines)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.pilot import Pilot

from tests.support.waiting import until
from velora_tui.tui.app import Settings, VeloraApp, make_app
from velora_tui.tui.screens.experiment import ExperimentScreen
from velora_tui.tui.widgets.episode_table import EpisodeTable
from velora_tui.tui.widgets.experiment_table import ExperimentTable

if TYPE_CHECKING:
    from textual.app import App


def paced_show_due(app: App[Any]) -> bool:
    """Some view of the current screen has a paced show waiting for the end of its interval
    (see widgets/pacing.py): what is on screen is about to change."""
    from velora_tui.tui.widgets.pacing import Paced  # Textual: only for the tests that need it

    screen = app.screen
    return any(
        isinstance(value, Paced) and value.timer is not None
        for node in (screen, *screen.walk_children())
        for value in vars(node).values()
    )


SIZE = (120, 40)

NOW = datetime(2026, 11, 23, 19, 45, 0)


def still(path: Path) -> VeloraApp:
    """The app on `path` with no watcher and a fixed clock."""
    return make_app([path], Settings(live=False, clock=lambda: NOW))


def live(path: Path, poll: bool = False) -> VeloraApp:
    return make_app([path], Settings(poll=poll))


async def settle(app: VeloraApp, seconds: float = 0.05) -> None:
    """Let the app's one-off workers finish (the watcher never does), and its paced views
    show what they were given."""
    for _ in range(2):
        await until(
            lambda: all(w.is_finished for w in app.workers if w.group != "watch"), timeout=20
        )
        await until(lambda: not paced_show_due(app))
        await asyncio.sleep(seconds)


def table(app: VeloraApp) -> ExperimentTable:
    return app.screen.query_one(ExperimentTable)


async def open_experiment(app: VeloraApp, pilot: Pilot[None]) -> ExperimentScreen:
    """The first experiment, loaded."""
    await settle(app)
    await pilot.press("enter")
    await settle(app)
    assert isinstance(app.screen, ExperimentScreen)
    return app.screen


async def open_tail(app: VeloraApp, pilot: Pilot[None]) -> EpisodeTable:
    """The first experiment's Episodes tab, loaded."""
    screen = await open_experiment(app, pilot)
    await pilot.press("2")
    await settle(app)
    return screen.query_one(EpisodeTable)


def tail_lines(tail: EpisodeTable) -> list[str]:
    """The episode tail's lines as drawn (header first)."""
    return [tail.render_line(y).text for y in range(tail.size.height)]


def cell_texts(app: VeloraApp) -> list[str]:
    grid = table(app)
    return [
        str(cell.plain if isinstance(cell, Text) else cell)
        for row in range(grid.row_count)
        for cell in grid.get_row_at(row)
    ]
