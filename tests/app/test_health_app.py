"""A run's health in the app: the list's Health column and the header's line from a run's newest
rows (no alert for its past), a live loss spike as one notification, the settings' theme
applied and the user's theme saved to the settings file (atomically, never beside the data)."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from rich.text import Text

from tests.support.app import open_experiment, settle, table
from tests.support.curves import Curve, rows, write_curve
from tests.support.waiting import until
from velora_tui.tui.app import Settings, VeloraApp, make_app
from velora_tui.tui.widgets.experiment_header import ExperimentHeader
from velora_tui.tui.widgets.experiment_table import row_key
from velora_tui.tui.widgets.line import Line


def capture(app: VeloraApp, notes: list[str]) -> None:
    """Every notification's message, kept (a notification expires from the screen)."""
    original = app.notify

    def notify(message: str, **options: Any) -> None:
        notes.append(message)
        original(message, **options)

    app.notify = notify  # type: ignore[method-assign]


def health_cell(app: object, db: Path) -> str:
    t = table(app)  # type: ignore[arg-type]
    if "health" not in t.shown_columns:
        return ""
    cell = t.get_cell(row_key((db, 1)), "health")
    return cell.plain if isinstance(cell, Text) else str(cell)


@pytest.mark.ui
async def test_the_list_and_header_show_a_solved_run(tmp_path: Path) -> None:
    db = write_curve(tmp_path / "metrics.db", Curve(seed=2, steps_per_second=400.0), env="X-v0")
    app = make_app([db], Settings(live=False, targets={"X-v0": 300.0}))
    notes: list[str] = []
    async with app.run_test(size=(140, 40)) as pilot:
        capture(app, notes)
        await settle(app)
        await until(lambda: health_cell(app, db) == "✔ solved", timeout=20)
        screen = await open_experiment(app, pilot)
        stats = screen.query_one(ExperimentHeader).query_one("#exp-stats", Line)
        await until(lambda: "solved at episode" in str(stats.render()), timeout=20)
    assert not [n for n in notes if "solved" in n]  # its past is its state, not news


@pytest.mark.ui
async def test_a_live_loss_spike_is_one_notification(tmp_path: Path) -> None:
    curve = Curve(seed=1, episodes=600, steps_per_second=400.0)
    db = write_curve(tmp_path / "metrics.db", curve, planned=1000)  # a run still running
    app = make_app([db], Settings(poll=True))
    notes: list[str] = []
    async with app.run_test(size=(140, 40)):
        capture(app, notes)
        await settle(app)
        await until(lambda: (db, 1) in app.alerts.health.runs, timeout=20)
        last = rows(curve)[-1]
        spike = replace(last, id=601, episode_num=601, critic_loss=last.critic_loss * 40)
        conn = sqlite3.connect(db, isolation_level=None)
        try:
            for _ in range(3):  # a burst: one event
                conn.execute(
                    "INSERT INTO episode (experiment_id, episode_num, reward, length,"
                    " reward_moving_avg, reward_moving_std, actor_loss, critic_loss, entropy_loss,"
                    " created_at) SELECT 1, max(episode_num) + 1, ?, ?, ?, ?, ?, ?, ?,"
                    " datetime('now', 'localtime') FROM episode",
                    (
                        spike.reward,
                        spike.length,
                        spike.reward_moving_avg,
                        spike.reward_moving_std,
                        spike.actor_loss,
                        spike.critic_loss,
                        spike.entropy_loss,
                    ),
                )
        finally:
            conn.close()
        await until(lambda: any("critic loss" in n for n in notes), timeout=20)
        await until(lambda: health_cell(app, db) == "loss spike", timeout=20)
    spikes = [n for n in notes if "critic loss" in n]
    assert len(spikes) == 1
    assert "at episode 601" in spikes[0]


@pytest.mark.ui
async def test_the_theme_from_the_settings_and_the_users_change_saved(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    db = write_curve(data / "metrics.db", Curve(seed=1, episodes=200))
    path = tmp_path / "config" / "velora-tui" / "settings.toml"
    path.parent.mkdir(parents=True, mode=0o700)
    path.write_text('# mine\ntheme = "nord"\n')
    app = make_app([db], Settings(live=False, theme="nord", settings_file=path))
    async with app.run_test(size=(120, 40)):
        await settle(app)
        assert app.theme == "nord"
        assert path.read_text() == '# mine\ntheme = "nord"\n'  # applying it saves nothing
        app.theme = "gruvbox"
        await settle(app)
    assert path.read_text() == '# mine\ntheme = "gruvbox"\n'
    assert sorted(p.name for p in path.parent.iterdir()) == ["settings.toml"]
    assert sorted(p.name for p in data.iterdir()) == ["metrics.db"]


@pytest.mark.ui
async def test_a_settings_problem_is_a_notification(tmp_path: Path) -> None:
    db = write_curve(tmp_path / "metrics.db", Curve(seed=1, episodes=200))
    problem = "settings /x/settings.toml: not valid TOML (bad); using the defaults"
    app = make_app([db], Settings(live=False, settings_problem=problem, theme="no-such-theme"))
    async with app.run_test(size=(120, 40)):
        await settle(app)
        messages = [n.message for n in app._notifications]
        assert problem in messages
        assert app.theme != "no-such-theme"


@pytest.mark.ui
async def test_smoothing_from_the_settings_and_the_users_change_saved(tmp_path: Path) -> None:
    db = write_curve(tmp_path / "metrics.db", Curve(seed=1, episodes=200))
    path = tmp_path / "config" / "velora-tui" / "settings.toml"
    app = make_app([db], Settings(live=False, smoothing=0.9, x_axis="time", settings_file=path))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_experiment(app, pilot)
        assert screen.chart_options.smoothing == 0.9
        assert screen.chart_options.x_axis == "time"
        assert not path.exists()  # applying the settings writes nothing
        await pilot.press("plus")
        await settle(app)
        assert screen.chart_options.smoothing == 0.95
    assert path.read_text() == "smoothing = 0.95\n"
    assert oct(path.parent.stat().st_mode & 0o777) == "0o700"
