"""Pilot tests of the app against real SQLite files."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest

from tests.support.app import SIZE, live, open_tail, settle, still, table, tail_lines
from tests.support.processes import Simulator
from tests.support.waiting import until
from velora_tui.tui.app import Settings, make_app
from velora_tui.tui.widgets.episode_table import MAX_ROWS, EpisodeTable

pytestmark = pytest.mark.ui


async def test_paused_tail_keeps_its_rows_while_old_ones_fall_off(sample_db: Path) -> None:
    """Paused on a row, with rows arriving by the thousand: the cursor stays on the same
    episode while it is kept, memory stays at MAX_ROWS rows, and End shows the newest."""
    app = still(sample_db)
    async with app.run_test(size=SIZE) as pilot:
        tail = await open_tail(app, pilot)
        await pilot.press("up", "up")
        watched = tail.kept[tail.cursor_row].id
        newest = tail.kept[-1]
        for start in range(1, MAX_ROWS + 1, 200):  # 1,000 rows, in batches
            batch = [replace(newest, id=newest.id + start + i) for i in range(200)]
            tail.add_episodes(batch)
            if watched in {row.id for row in tail.kept}:
                assert tail.kept[tail.cursor_row].id == watched
        await pilot.pause()
        assert len(tail.kept) == MAX_ROWS
        assert tail.unseen == MAX_ROWS
        assert tail.cursor_row == 0  # its row fell off: the oldest kept
        await pilot.press("end")
        await pilot.pause()
        assert tail.following
        assert tail.cursor_row == MAX_ROWS - 1
        assert tail.kept[-1].id == newest.id + MAX_ROWS
        assert tail_lines(tail)[-1].split()[0] == str(newest.episode_num)


async def test_file_that_appears_later_and_live_episodes(
    tmp_path: Path, simulator: Simulator
) -> None:
    db = tmp_path / "run" / "metrics.db"
    db.parent.mkdir()
    app = live(db)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, 0.2)
        empty = app.screen.query_one("#empty")
        assert empty.display
        message = str(empty.render())
        assert "Waiting for" in message
        assert str(db) in message
        simulator(db, episodes=40, rate=100)
        await until(lambda: table(app).row_count == 1)
        summary = app.monitor.summary((db, 1))
        assert summary is not None
        await until(lambda: summary.episodes == 40)
        await pilot.press("enter", "2")
        episodes = app.screen.query_one(EpisodeTable)
        await until(lambda: len(episodes.kept) == 40)
        assert [row.id for row in episodes.kept] == sorted(row.id for row in episodes.kept)


async def test_simulator_that_stalls_is_reported_once(tmp_path: Path, simulator: Simulator) -> None:
    from datetime import timedelta

    db = tmp_path / "metrics.db"
    clock = [datetime.now()]
    app = make_app([db], Settings(clock=lambda: clock[0]))
    async with app.run_test(size=SIZE) as pilot:
        simulator(db, episodes=200, rate=200, extra=["--stall-after", "30"])
        await until(lambda: bool(app.monitor.summaries()))
        summary = app.monitor.summaries()[0]
        await until(lambda: summary.episodes == 30)
        clock[0] = datetime.now()
        await pilot.pause(0.3)
        assert summary.status(clock[0]).value == "running"
        app.publish([], heartbeat=True)
        clock[0] = datetime.now() + timedelta(seconds=61)
        app.publish([], heartbeat=True)
        app.publish([], heartbeat=True)
        await pilot.pause()
        stalled = [n for n in app._notifications if "stalled" in n.message]
        assert len(stalled) == 1
        assert table(app).cells(summary, clock[0])[0].plain == "◌"
