"""Every string from a database is text on every screen, never Textual markup.

Agent, env, config keys and values and the database's folder name hold markup: a closing tag
with no opening one (`[/oops]`: MarkupError, the app crashed), `@click` actions (a click ran
them: `app.quit` quit, `app.screenshot` overwrote a file), styles and links. The app goes
through the list, an alert, the palette, an export, the experiment's tabs and config search,
the diff, the comparison, the groups (list, chart, key picker) and the sweep table on a real
SQLite file: each time the text is on screen as it is stored, and clicking it does nothing.
"""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from rich.console import Console
from textual.pilot import Pilot
from textual.widgets._toast import Toast

from tests.support.app import settle
from tests.support.databases import MakeDb, RunSpec, execute
from tests.support.waiting import until
from velora_tui.tui.app import Settings, VeloraApp, make_app

pytestmark = pytest.mark.ui

SIZE = (160, 50)
QUIT = "[@click=app.quit]"
SHOT = "[@click=app.screenshot('vf','.')]"
AGENTS = ["[/oops]", f"{QUIT}quit", f"{SHOT}s"]
ENVS = ["[bold]x", "[link=https://evil.example]l[/link]", f"{QUIT}env"]
FOLDER = "[@click=app.quit]db[bold]x"  # no `/` in a folder's name


def config(index: int) -> str:
    return json.dumps(
        {
            "seed": index,
            "[/oops]": f"{QUIT}v{index % 2}",
            f"{QUIT}k": "[bold]x",
            "train_params": {"n_episodes": 100, "[link=https://evil.example]": "[/oops]"},
        }
    )


def screen_text(app: VeloraApp) -> str:
    """The screen as the terminal shows it, as plain text (toasts included)."""
    width, height = app.size
    console = Console(
        width=width, height=height, file=io.StringIO(), force_terminal=True, record=True
    )
    console.print(
        app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
    )
    return console.export_text(styles=False)


async def toast_shown_and_inert(app: VeloraApp, pilot: Pilot[None], text: str) -> None:
    """A notification shows `text` literally; a click on it leaves the app running."""
    await until(lambda: bool(app.screen.query(Toast)), timeout=5)
    toasts = [t for t in app.screen.query(Toast) if text in str(t.render())]
    assert toasts, [str(t.render()) for t in app.screen.query(Toast)]
    await pilot.click(toasts[0])
    await pilot.pause()
    assert app.is_running, f"clicking {text!r} ended the app"
    assert app.return_code is None


async def shown_and_inert(app: VeloraApp, pilot: Pilot[None], *texts: str) -> None:
    """Each of `texts` is on screen literally; a click on it leaves the app running."""
    await settle(app, 0.1)
    shown = screen_text(app)
    lines = shown.splitlines()
    screen = app.screen
    for text in texts:
        assert text in shown, f"{text!r} not on screen:\n{shown}"
        y = next(i for i, line in enumerate(lines) if text in line)
        x = lines[y].index(text)
        await pilot.click(offset=(x + 1, y))
        await pilot.pause()
        assert app.is_running, f"clicking {text!r} ended the app"
        assert app.return_code is None
        while app.screen is not screen and screen in app.screen_stack:
            app.pop_screen()  # a click on a row opens it: back to where the text was
        await pilot.pause()
    assert not (Path.cwd() / "vf").exists()


async def test_markup_from_the_database_is_text_everywhere(
    make_db: MakeDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from velora_tui.tui.screens.compare import CompareScreen
    from velora_tui.tui.screens.diff import DiffScreen
    from velora_tui.tui.screens.experiment import ExperimentScreen
    from velora_tui.tui.screens.groups import GroupChartScreen, KeyPicker
    from velora_tui.tui.screens.sweep import SweepScreen
    from velora_tui.tui.widgets.experiment_table import ExperimentTable

    monkeypatch.chdir(tmp_path)  # where an `app.screenshot('vf','.')` would write
    start = datetime(2026, 11, 24, 12, 0, 0)
    runs = [
        RunSpec(planned=100, write=20, agent=a, env=e) for a, e in zip(AGENTS, ENVS, strict=True)
    ]
    db = make_db(tmp_path / FOLDER / "metrics.db", runs, start=start, interval=timedelta(seconds=1))
    for exp_id in (1, 2, 3):
        execute(db, "UPDATE experiment SET config = ? WHERE id = ?", (config(exp_id), exp_id))
    out = tmp_path / "out"
    out.mkdir()
    now = [start + timedelta(seconds=64)]  # the last run is running, the others have stalled
    app = make_app([db], Settings(live=False, clock=lambda: now[0], output_dir=out))
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(app)
        await shown_and_inert(app, pilot, "[/oops]", f"{QUIT}quit", "[bold]x")

        # An alert names the run: the notification is text.
        now[0] += timedelta(minutes=2)
        app.publish([], heartbeat=True)
        app.publish([], heartbeat=True)
        await pilot.pause()
        messages = [n.message for n in app._notifications]
        assert any(SHOT in m and "stalled" in m for m in messages), messages
        await toast_shown_and_inert(app, pilot, SHOT)
        app.clear_notifications()

        # The export names the folder.
        app.action_export_csv()
        await settle(app)
        assert list(out.glob("velora-*.csv"))
        assert any(FOLDER in n.message for n in app._notifications)
        await toast_shown_and_inert(app, pilot, FOLDER)
        app.clear_notifications()

        # The palette lists the runs, with their paths as help.
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"oops")
        await pilot.pause(0.5)
        await shown_and_inert(app, pilot, "[/oops]")
        await pilot.press("escape")
        await settle(app)

        # The experiment: header, charts, tail, config tree and its search.
        await pilot.press("enter")
        await settle(app, 0.2)
        assert isinstance(app.screen, ExperimentScreen)
        await shown_and_inert(app, pilot, "[/oops]", "[bold]x")
        await pilot.press("2")
        await settle(app)
        await pilot.press("3")
        await settle(app)
        await shown_and_inert(app, pilot, f"{QUIT}k", "[/oops]")
        await pilot.press("slash", *"[/oops]", "enter")
        await settle(app)
        await pilot.press("slash", *"[/nothing]", "enter")
        await settle(app)
        await toast_shown_and_inert(app, pilot, "[/nothing]")
        await pilot.press("escape", "escape")
        await settle(app)

        # Two marked: their config diff and their comparison.
        app.screen.query_one(ExperimentTable).move_cursor(row=0)
        await pilot.press("space", "space", "d")
        await settle(app, 0.2)
        assert isinstance(app.screen, DiffScreen)
        await pilot.press("a")
        await shown_and_inert(app, pilot, f"{QUIT}v", f"{QUIT}k", "[bold]x")
        await pilot.press("escape", "c")
        await settle(app, 0.2)
        assert isinstance(app.screen, CompareScreen)
        await shown_and_inert(
            app, pilot, f"{SHOT}s", f"{QUIT}quit", "[link=https://evil.example]l[/link]"
        )
        await pilot.press("escape")
        await settle(app)

        # Groups: their names are config keys and values; the chart's legend; the sweep table.
        await pilot.press("g")
        await settle(app, 0.2)
        await shown_and_inert(app, pilot, f"{QUIT}v")
        await pilot.press("enter")
        await settle(app, 0.3)
        assert isinstance(app.screen, GroupChartScreen)
        await shown_and_inert(app, pilot, f"{QUIT}v")
        await pilot.press("escape", "w")
        await settle(app, 0.2)
        assert isinstance(app.screen, SweepScreen)
        await shown_and_inert(app, pilot, "[/oops]", f"{QUIT}v")
        await pilot.press("escape", "G")
        await settle(app, 0.2)
        assert isinstance(app.screen, KeyPicker)
        await shown_and_inert(app, pilot, '▌ "[/oops]"')  # the one key that differs (quoted: a [)
        await pilot.press("escape")
        await settle(app)
        assert app.is_running
