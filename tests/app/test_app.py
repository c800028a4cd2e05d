"""Pilot tests of the app against real SQLite files."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Input, Static, TabbedContent, Tree
from textual.widgets._footer import FooterKey

from tests.support.app import (
    NOW,
    SIZE,
    cell_texts,
    live,
    open_experiment,
    open_tail,
    settle,
    still,
    table,
    tail_lines,
)
from tests.support.databases import MakeDb, RunSpec, add_episode, execute
from tests.support.folders import assert_unchanged
from tests.support.waiting import until
from velora_tui.tui.app import Settings, VeloraApp, make_app
from velora_tui.tui.screens.experiment import ExperimentScreen
from velora_tui.tui.screens.experiments import ExperimentsScreen
from velora_tui.tui.screens.help import HelpScreen
from velora_tui.tui.widgets.config_panel import ConfigPanel
from velora_tui.tui.widgets.episode_table import EpisodeTable
from velora_tui.tui.widgets.key_footer import KeyFooter

pytestmark = pytest.mark.ui


async def test_lists_sample_experiments(sample_db: Path) -> None:
    with assert_unchanged(sample_db.parent):
        app = still(sample_db)
        async with app.run_test(size=SIZE) as pilot:
            await settle(app)
            await pilot.pause()
            grid = table(app)
            assert grid.row_count == 3
            # All finished: most recent activity first.
            assert [key[1] for key in grid.order] == [3, 2, 1]
            texts = cell_texts(app)
            assert "60/60" in texts
            assert "120/120" in texts
            assert "InvertedPendulum-v5" in texts


async def test_a_run_without_episodes_shows_no_value_not_nan(
    make_db: MakeDb, tmp_path: Path
) -> None:
    """A run whose experiment row is there but no episode yet (a job just started) has no
    last reward, best or average: a dim `-`, never a red `nan` (which says a NaN was stored)."""
    path = make_db(tmp_path / "metrics.db", [RunSpec(planned=100, write=0), RunSpec(planned=5)])
    app = still(path)
    async with app.run_test(size=SIZE):
        await settle(app)
        grid = table(app)
        rows = [[str(cell.plain) for cell in grid.get_row_at(i)] for i in range(grid.row_count)]
        (empty,) = [row for row in rows if "0/100" in row]
        assert "nan" not in empty
        assert empty.count("-") >= 3


async def test_open_tabs_and_back(sample_db: Path) -> None:
    app = still(sample_db)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        await pilot.press("down", "enter")
        await settle(app)
        screen = app.screen
        assert isinstance(screen, ExperimentScreen)
        assert screen.key == (sample_db, 2)
        tabs = screen.query_one(TabbedContent)
        assert tabs.active == "charts"
        await pilot.press("2")
        await settle(app)
        assert tabs.active == "episodes"
        episodes = screen.query_one(EpisodeTable)
        assert len(episodes.kept) == 40
        assert episodes.cursor_row == 39  # following: the newest row is in view
        await pilot.press("3")
        await settle(app)
        assert tabs.active == "config"
        tree = screen.query_one("#config-tree", Tree)
        labels = [str(node.label) for node in tree.root.children]
        assert any(label.startswith("train_params") for label in labels)
        await pilot.press("tab")
        assert tabs.active == "charts"
        await pilot.press("escape")
        await settle(app)
        assert isinstance(app.screen, ExperimentsScreen)


async def test_config_search_from_any_tab(sample_db: Path) -> None:
    """`/` in an experiment searches its config; keys typed there stay in the box (even `/`);
    Esc goes back to the tree, a second Esc back to the list."""
    app = still(sample_db)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_experiment(app, pilot)
        await pilot.press("3")
        tree = screen.query_one("#config-tree", Tree)
        assert app.focused is tree  # arrows move in the tree at once
        await pilot.press("1", "slash")
        assert screen.query_one(TabbedContent).active == "config"
        box = screen.query_one("#config-search", Input)
        assert app.focused is box  # type: ignore[comparison-overlap]
        await pilot.press(*"gamma/x", "backspace", "backspace", "enter")
        await pilot.pause()
        assert box.value == "gamma"
        assert tree.cursor_node is not None
        assert str(tree.cursor_node.label).startswith("gamma")
        await pilot.press("escape")
        assert app.focused is tree
        assert app.screen is screen
        await pilot.press("escape")
        await settle(app)
        assert isinstance(app.screen, ExperimentsScreen)


async def test_search_right_after_switching_to_the_config_tab(sample_db: Path) -> None:
    """`3` then `/` at once: the search box keeps the focus (the switch to the Config tab,
    still under way, used to hand it to the tree, and what was typed went nowhere)."""
    app = still(sample_db)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_experiment(app, pilot)
        # Both keys' actions before the switch's TabActivated is handled, as with keys typed
        # fast over SSH (Pilot waits for each key to be handled).
        screen.action_tab("config")
        screen.action_search_config()
        await settle(app)
        box = screen.query_one("#config-search", Input)
        assert app.focused is box
        await pilot.press(*"gamma")
        assert box.value == "gamma"


async def test_tail_keeps_rows_that_arrive_while_it_loads(sample_db: Path) -> None:
    """Opening an experiment reads its latest rows in a thread; rows delivered live meanwhile
    are newer than that snapshot and stay in the tail when it lands."""
    app = still(sample_db)
    async with app.run_test(size=SIZE) as pilot:
        table = await open_tail(app, pilot)
        screen = app.screen
        assert isinstance(screen, ExperimentScreen)
        snapshot = list(table.kept)
        newer = replace(snapshot[-1], id=snapshot[-1].id + 1000)
        table.add_episodes([newer])
        screen.show_episodes(snapshot[:-5], replace=True)  # a snapshot read a moment earlier
        assert [row.id for row in table.kept] == [row.id for row in [*snapshot, newer]]


async def test_huge_config_that_is_not_an_object_is_cut(make_db: MakeDb, tmp_path: Path) -> None:
    path = make_db(tmp_path / "metrics.db", [3])
    execute(path, "UPDATE experiment SET config = ?", (json.dumps("x" * 500_000),))
    app = still(path)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        await pilot.press("enter", "3")
        await settle(app)
        shown = str(app.screen.query_one("#config-text", Static).render())
        assert len(shown) < 300_000
        assert "more characters not shown" in shown


async def test_filter_narrows_and_clears(sample_db: Path) -> None:
    app = still(sample_db)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        await pilot.press("slash", *"pendulum")
        await pilot.pause(0.3)
        assert table(app).row_count == 1
        await pilot.press("enter")
        assert table(app).has_focus
        await pilot.press("slash", "ctrl+u", *"nothing-like-this")
        await pilot.pause(0.3)
        empty = app.screen.query_one("#empty")
        assert empty.display
        await pilot.press("escape")
        await pilot.pause()
        assert table(app).row_count == 3


async def test_help_screen_lists_keys(sample_db: Path) -> None:
    """Help is built from the bindings: every key of every screen, and the filter's syntax."""
    from velora_tui.tui.filtering import FIELDS, STATUSES
    from velora_tui.tui.screens.help import FILTER_SYNTAX, sections

    app = still(sample_db)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        keys = {title: " ".join(k for k, _ in rows).split() for title, rows in sections(app)}
        assert {"q", "?", "r", "^p"} <= set(keys["Anywhere"])
        assert {"⏎", "/", "space", "c", "d", "esc", "j", "k"} <= set(keys["Experiment list"])
        assert {"1", "2", "3", "tab", "+/-", "x", "l", "f", "end", "/", "esc"} <= set(
            keys["Experiment"]
        )
        assert {"esc", "+/-", "x"} <= set(keys["Compare"])
        assert {"esc", "a", "j", "k"} <= set(keys["Config diff"])
        syntax = " ".join(" ".join(row) for row in FILTER_SYNTAX)
        assert all(field in syntax for field in (*FIELDS, *STATUSES, "cfg."))
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, ExperimentsScreen)


async def test_click_on_an_older_row_pauses(sample_db: Path) -> None:
    app = still(sample_db)
    async with app.run_test(size=SIZE) as pilot:
        tail = await open_tail(app, pilot)
        assert tail.following
        await pilot.click(EpisodeTable, offset=(5, 3))  # the header, then rows
        await pilot.pause()
        assert not tail.following
        shown = tail_lines(tail)[3].split()[0]
        assert str(tail.kept[tail.cursor_row].episode_num) == shown


async def test_footer_is_rebuilt_only_when_its_keys_change(
    sample_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rebuilds = 0
    rebuild = KeyFooter.recompose

    async def counted(footer: KeyFooter) -> None:
        nonlocal rebuilds
        rebuilds += 1
        await rebuild(footer)

    monkeypatch.setattr(KeyFooter, "recompose", counted)
    app = still(sample_db)
    async with app.run_test(size=SIZE) as pilot:

        def keys() -> list[str]:
            return [key.description for key in app.screen.query_one(KeyFooter).query(FooterKey)]

        await settle(app)
        listed = keys()
        before = rebuilds
        await pilot.press("slash")  # typing a filter: only the filter's keys
        await settle(app)
        assert keys() == ["Done", "Clear", "palette"]
        assert rebuilds == before + 1
        await pilot.press("escape")
        await settle(app)
        assert keys() == listed
        assert rebuilds == before + 2

        screen = await open_experiment(app, pilot)
        shown = keys()
        assert "Follow" in shown
        before = rebuilds
        for tab in ("2", "up", "3", "1", "2"):  # focus moves; the keys stay, in place
            await pilot.press(tab)
            await settle(app)
            assert keys() == shown
        assert rebuilds == before
        tail = screen.query_one(EpisodeTable)
        assert not tail.following
        await pilot.press("f")  # the screen's key, answered while the tail has focus
        assert tail.following


async def test_footer_leaves_out_keys_that_type_into_the_search_box(sample_db: Path) -> None:
    """In the config search, `+` types a plus: the footer offers the search's own keys, not
    the charts' `+/-` (Textual's filter missed keys it renames: plus, minus, slash)."""
    app = still(sample_db)
    async with app.run_test(size=SIZE) as pilot:

        def keys() -> list[str]:
            return [key.key for key in app.screen.query_one(KeyFooter).query(FooterKey)]

        screen = await open_experiment(app, pilot)
        assert "plus" in keys()
        await pilot.press("slash")
        await settle(app)
        assert keys() == ["enter", "escape", "ctrl+p"]
        options = screen.chart_options
        await pilot.press("g", "plus", "minus")
        assert screen.chart_options == options  # typed, not smoothing
        assert screen.query_one("#config-search", Input).value == "g+-"
        await pilot.press("escape")
        await settle(app)
        assert "plus" in keys()


async def test_a_footer_rebuild_that_runs_after_its_screen_left(sample_db: Path) -> None:
    """A rebuild is queued on whichever screen is active when the footer asks for it; keys
    pressed fast under load (help, back, back) ran one after the footer's screen had gone,
    which crashed the app (NoScreen). It must do nothing instead."""
    app = still(sample_db)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_experiment(app, pilot)
        footer = screen.query_one(KeyFooter)
        screen.dismiss()
        await settle(app)
        assert isinstance(app.screen, ExperimentsScreen)
        await footer._rebuild()  # as the queued callback runs it
        await settle(app)
        await open_experiment(app, pilot)
        assert app.is_running


async def test_follow_pause_and_resume(make_db: MakeDb, tmp_path: Path) -> None:
    db = make_db(tmp_path / "metrics.db", [30])
    app = live(db)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, 0.2)
        await pilot.press("enter", "2")
        await settle(app)
        episodes = app.screen.query_one(EpisodeTable)
        await until(lambda: len(episodes.kept) == 30)
        await pilot.press("up", "up")
        assert not episodes.following
        for num in range(31, 36):
            add_episode(db, 1, episode_num=num)
        await until(lambda: len(episodes.kept) == 35)
        await until(lambda: episodes.unseen == 5)
        assert episodes.cursor_row == 27
        await pilot.pause()
        label = app.screen.query_one("#follow-state")
        assert "5 new" in str(label.render())
        await pilot.press("f")
        assert episodes.following
        assert episodes.cursor_row == 34
        add_episode(db, 1, episode_num=36)
        await until(lambda: len(episodes.kept) == 36)
        await until(lambda: episodes.cursor_row == 35)


async def test_hostile_strings_and_numbers(make_db: MakeDb, tmp_path: Path) -> None:
    db = make_db(tmp_path / "metrics.db", [5])
    execute(
        db,
        "UPDATE experiment SET agent = ?, env = ?, config = ?",
        ("[/bold]\x1b[31mEvil[", "[red]env[/]\x1b]0;title\x07", '{"train_params": [1, '),
    )
    add_episode(db, 1, episode_num=6, reward=float("inf"), actor_loss="oops")
    add_episode(db, 1, episode_num=7, reward="text", created_at="not a time")
    app = still(db)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        texts = " ".join(cell_texts(app))
        assert "[/bold]" in texts
        assert "\x1b" not in texts
        assert "7 !" in texts  # episodes flagged for non-finite values
        await pilot.press("enter", "2")
        await settle(app)
        tail = app.screen.query_one(EpisodeTable)
        assert len(tail.kept) == 7
        drawn = "\n".join(tail_lines(tail))
        assert "\x1b" not in drawn
        for shown in (" 6 !", " inf ", " 7 !"):  # flagged episodes, the inf reward
            assert shown in drawn
        await pilot.press("3")
        await settle(app)
        panel = app.screen.query_one(ConfigPanel)
        assert panel.query_one("#config-error").display
        await pilot.press("1")
        await settle(app, 0.2)


async def test_unreadable_and_empty_sources(tmp_path: Path) -> None:
    text_file = tmp_path / "a" / "metrics.db"
    text_file.parent.mkdir()
    text_file.write_text("hello, not a database\n")
    empty = tmp_path / "b" / "metrics.db"
    empty.parent.mkdir()
    sqlite3.connect(empty).close()
    with assert_unchanged(tmp_path):
        app = make_app([text_file, empty], Settings(live=False, clock=lambda: NOW))
        async with app.run_test(size=SIZE):
            await settle(app)
            message = str(app.screen.query_one("#empty").render())
            assert "Cannot read" in message
            assert "not a SQLite database" in message
            assert "Waiting for" in message


async def test_export_and_screenshot_from_the_app(sample_db: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    app = make_app([sample_db], Settings(live=False, clock=lambda: NOW, output_dir=out))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        app.action_export_csv()
        await settle(app)
        exported = out / f"velora-{sample_db.parent.name}-exp3.csv"
        assert exported.read_text().count("\n") == 61
        app.action_save_svg()
        assert list(out.glob("velora-tui-*.svg"))
        titles = [command.title for command in app.get_system_commands(app.screen)]
        assert titles.count("Save screenshot (SVG)") == 1
        assert "Screenshot" not in titles  # Textual's own: it would not say where it went
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Pendulum")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await settle(app)
        assert isinstance(app.screen, ExperimentScreen)
        assert app.screen.key == (sample_db, 2)


async def test_list_fits_the_terminal_width(sample_db: Path) -> None:
    """Every column at 120; at 80 the list leaves some out rather than scroll sideways, and
    puts them back when the terminal widens again."""
    app = still(sample_db)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app)
        await pilot.pause()
        grid = table(app)
        assert len(grid.columns) == 10
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        assert 0 < len(grid.columns) < 10
        assert {"ID", "Agent", "Env", "Episodes"} <= {str(c.label) for c in grid.columns.values()}
        assert grid.virtual_size.width <= grid.size.width
        assert grid.row_count == 3
        await pilot.resize_terminal(120, 40)
        await pilot.pause()
        assert len(grid.columns) == 10


async def test_small_terminal_does_not_crash(sample_db: Path) -> None:
    app = still(sample_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app)
        await pilot.press("enter")
        await settle(app)
        await pilot.resize_terminal(20, 6)
        await pilot.pause()
        await pilot.resize_terminal(120, 40)
        await pilot.pause()
        assert isinstance(app.screen, ExperimentScreen)


async def test_mark_and_compare(sample_db: Path) -> None:
    from velora_tui.tui.screens.compare import CompareChart, CompareScreen

    app = still(sample_db)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        await pilot.press("c")
        assert isinstance(app.screen, ExperimentsScreen)  # fewer than two marked: a hint only
        await pilot.press("space", "space")
        assert table(app).marked == [(sample_db, 3), (sample_db, 2)]
        assert "▶" in cell_texts(app)[0]
        await pilot.press("c")
        await settle(app)
        screen = app.screen
        assert isinstance(screen, CompareScreen)
        chart = screen.query_one(CompareChart)
        assert [len(series) for series in chart.curves] == [60, 40]
        await pilot.press("plus", "x")
        assert chart.options.x_axis == "steps"
        await pilot.press("escape")
        assert isinstance(app.screen, ExperimentsScreen)


async def test_stalled_run_is_notified_once(make_db: MakeDb, tmp_path: Path) -> None:
    from datetime import timedelta

    start = datetime(2026, 11, 24, 12, 0, 0)
    runs = [RunSpec(planned=100, write=20)]
    db = make_db(tmp_path / "metrics.db", runs, start=start, interval=timedelta(seconds=1))
    now = [start + timedelta(seconds=22)]
    app = make_app([db], Settings(live=False, clock=lambda: now[0]))
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        assert app.monitor.summaries()[0].status(now[0]).value == "running"
        now[0] += timedelta(minutes=2)
        app.publish([], heartbeat=True)
        app.publish([], heartbeat=True)
        await pilot.pause()
        messages = [n.message for n in app._notifications]
        assert sum("stalled" in m for m in messages) == 1


async def test_filter_language_and_bad_terms(sample_db: Path) -> None:
    app = still(sample_db)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        await pilot.press("slash", *"agent:neuroflow best>60")
        await pilot.pause(0.3)
        assert [key[1] for key in table(app).order] == [3]
        await pilot.press("ctrl+u", *"cfg.train_params.n_episodes>=60")
        await pilot.pause(0.3)
        await settle(app)
        await pilot.pause()
        assert sorted(key[1] for key in table(app).order) == [1, 3]
        await pilot.press("ctrl+u", *"rewrd>3")
        await pilot.pause()
        error = app.screen.query_one("#filter-error")
        assert error.display
        assert "rewrd" in str(error.render())
        await pilot.press("escape")
        await pilot.pause()
        assert table(app).row_count == 3
        assert not error.display


async def test_config_diff_of_two_marked(sample_db: Path) -> None:
    from textual.widgets import DataTable

    from velora_tui.tui.screens.diff import DiffScreen

    app = still(sample_db)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        await pilot.press("space", "space", "d")
        await settle(app)
        screen = app.screen
        assert isinstance(screen, DiffScreen)
        grid = screen.query_one(DataTable)
        keys = [str(grid.get_row_at(i)[1]) for i in range(grid.row_count)]
        assert "train_params.n_episodes" in keys
        assert "torch.device" not in keys  # same in both: hidden until `a`
        await pilot.press("a")
        assert grid.row_count > len(keys)
        await pilot.press("escape")
        assert isinstance(app.screen, ExperimentsScreen)


@pytest.mark.parametrize("size", [(120, 40), (80, 24)])
async def test_config_diff_fits_both_experiments_on_screen(
    sample_db: Path, size: tuple[int, int]
) -> None:
    """Long keys and values are cut so that both experiments' columns are on screen (at 120
    columns the second was pushed off it); the cursor's row is shown whole below the table,
    and the cursor keeps its key through a resize and `a`."""
    from textual.widgets import DataTable, Static

    from velora_tui.tui.screens.diff import DiffScreen

    app = still(sample_db)
    async with app.run_test(size=size) as pilot:
        await settle(app)
        await pilot.press("space", "j", "space", "d")
        await settle(app)
        screen = app.screen
        assert isinstance(screen, DiffScreen)
        grid = screen.query_one(DataTable)
        padding = 2 * grid.cell_padding
        used = sum(column.width + padding for column in grid.columns.values())
        assert used <= grid.size.width
        long_row = next(i for i, row in enumerate(screen.shown) if "SparseLinear" in str(row.left))
        grid.move_cursor(row=long_row)
        await pilot.pause()
        row = screen.shown[long_row]
        cells = [str(c) for c in grid.get_row_at(long_row)]
        assert cells[1].endswith(row.key.rsplit(".", 1)[-1])  # the key's own name stays
        detail = str(screen.query_one("#diff-detail", Static).render())
        assert row.key in detail
        assert str(row.left) in detail
        assert str(row.right) in detail
        await pilot.resize_terminal(100, 30)
        await settle(app)
        assert screen.shown[grid.cursor_row].key == row.key
        await pilot.press("a")
        await settle(app)
        assert screen.shown[grid.cursor_row].key == row.key


async def test_cursor_stays_on_top_until_the_user_moves_it(make_db: MakeDb, tmp_path: Path) -> None:
    from datetime import timedelta

    old = datetime.now() - timedelta(hours=1)
    db = make_db(tmp_path / "metrics.db", [RunSpec(planned=10, write=5)], start=old)

    def new_run(name: str) -> int:
        exp_id = execute(
            db,
            "INSERT INTO experiment (agent, env, config, created_at) VALUES (?, ?, ?, ?)",
            (name, "Env", "{}", str(datetime.now())),
        )
        assert exp_id is not None
        add_episode(db, exp_id, episode_num=1)
        return exp_id

    app = live(db)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, 0.2)
        second = new_run("Second")
        # The list is redrawn a few times a second at most: waited for, not assumed drawn.
        await until(lambda: table(app).order == [(db, second), (db, 1)])
        await pilot.pause()
        assert table(app).cursor_row == 0  # the newcomer on top, and the cursor with it
        await pilot.press("down")
        assert table(app).selected_key == (db, 1)
        third = new_run("Third")
        await until(lambda: table(app).order == [(db, third), (db, second), (db, 1)])
        await pilot.pause()
        assert table(app).selected_key == (db, 1)  # once moved, the cursor follows its row


async def test_a_stream_of_changes_redraws_the_list_a_few_times_a_second(
    make_db: MakeDb, tmp_path: Path
) -> None:
    """A DataTable repaints every line on any change: the list is redrawn at once for a lone
    change, then at most every LIST_INTERVAL while changes pour in, the last one always shown."""
    from velora_tui.data.records import Update
    from velora_tui.tui.screens.experiments import LIST_INTERVAL

    db = make_db(tmp_path / "metrics.db", [RunSpec(planned=100, write=5)])
    app = live(db)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, 0.3)
        grid = table(app)
        shows: list[float] = []
        real_show = grid.show

        def counted_show(*args: object, **kwargs: object) -> None:
            shows.append(time.monotonic())
            real_show(*args, **kwargs)  # type: ignore[arg-type]

        grid.show = counted_show  # type: ignore[method-assign]
        monitor = app.monitor
        summary = monitor.summary((db, 1))
        assert summary is not None

        # A lone change after a quiet spell shows at once.
        start = time.monotonic()
        app.publish([Update(db, experiments={1})])
        await pilot.pause()
        assert len(shows) == 1
        assert shows[0] - start < LIST_INTERVAL / 2

        # Then 40 changes 20 ms apart: a few redraws, not 40.
        await asyncio.sleep(LIST_INTERVAL)
        shows.clear()
        start = time.monotonic()
        for episodes in range(6, 46):
            summary.episodes = episodes
            app.publish([Update(db, experiments={1})])
            await asyncio.sleep(0.02)
        await asyncio.sleep(LIST_INTERVAL * 2)
        await pilot.pause()
        window = time.monotonic() - start
        assert 2 <= len(shows) <= window / LIST_INTERVAL + 1, (window, shows)
        assert "45/100" in cell_texts(app)  # the last change is on screen


async def test_rows_streaming_into_the_tail_do_not_lay_out_the_screen(
    make_db: MakeDb, tmp_path: Path
) -> None:
    """New rows change the tail's scrollable size only: laying out the whole screen for them
    (3-8 ms, 10 times a second) is not needed; the tail still follows its newest row."""
    db = make_db(tmp_path / "metrics.db", [RunSpec(planned=500, write=50)])
    app = live(db)
    async with app.run_test(size=SIZE) as pilot:
        tail = await open_tail(app, pilot)
        await until(lambda: len(tail.kept) == 50)
        await pilot.pause()
        screen = app.screen
        layouts = 0
        real_refresh_layout = screen._refresh_layout

        def counted(*args: object, **kwargs: object) -> None:
            nonlocal layouts
            layouts += 1
            real_refresh_layout(*args, **kwargs)  # type: ignore[arg-type]

        screen._refresh_layout = counted  # type: ignore[method-assign]
        layout_requests = 0
        real_refresh = tail.refresh

        def refresh(*args: object, layout: bool = False, **kwargs: object) -> object:
            nonlocal layout_requests
            layout_requests += layout
            return real_refresh(*args, layout=layout, **kwargs)  # type: ignore[arg-type]

        tail.refresh = refresh  # type: ignore[method-assign,assignment]
        for num in range(51, 91):
            add_episode(db, 1, episode_num=num)
            await asyncio.sleep(0.01)
        await until(lambda: len(tail.kept) == 90)
        await settle(app, 0.2)
        assert layout_requests == 0
        assert tail.following
        assert tail.cursor_row == 89
        assert tail.scroll_y == tail.max_scroll_y > 0
        assert "90" in tail_lines(tail)[-1]
        assert layouts <= 2  # the follow scrolls (no layout), a scrollbar or two at most


async def test_hidden_tabs_are_read_when_first_shown(make_db: MakeDb, tmp_path: Path) -> None:
    """Opening an experiment builds what it shows (the charts); the tail and the config are
    read when their tab first shows. Rows that arrive before then are kept."""
    db = make_db(tmp_path / "metrics.db", [RunSpec(planned=100, write=20)])
    app = live(db)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_experiment(app, pilot)
        tail = screen.query_one(EpisodeTable)
        tree = screen.query_one(ConfigPanel).query_one(Tree)
        assert not tree.root.children
        add_episode(db, 1, episode_num=21)
        await until(lambda: len(tail.kept) == 1)  # delivered live, before the tail was read
        await pilot.press("2")
        await until(lambda: len(tail.kept) == 21)
        assert [row.episode_num for row in tail.kept] == list(range(1, 22))
        await pilot.press("3")
        await until(lambda: bool(tree.root.children))


async def test_header_shows_an_experiment_again_once_it_is_back(sample_db: Path) -> None:
    """ "No longer in the database" went around the title's cache of what it shows: when the
    experiment came back with the same title, the cache said it was on screen and the warning
    stayed."""
    from velora_tui.tui.widgets.experiment_header import ExperimentHeader

    app = still(sample_db)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_experiment(app, pilot)
        header = screen.query_one(ExperimentHeader)

        def title() -> str:
            return str(header.query_one("#exp-title", Static).render())

        summary = app.monitor.summary(screen.key)
        shown = title()
        assert f"#{screen.key[1]}" in shown
        header.show(None, NOW)
        assert "no longer in the database" in title()
        header.show(summary, NOW)
        assert title() == shown


def raise_once(monkeypatch: pytest.MonkeyPatch, target: object, name: str) -> list[object]:
    """Make `target.name` raise the first time it is called; the calls that failed."""
    real = getattr(target, name)
    failed: list[object] = []

    def once(*args: object, **kwargs: object) -> object:
        if not failed:
            failed.append(args)
            raise RuntimeError("disk on fire")
        return real(*args, **kwargs)

    monkeypatch.setattr(target, name, once)
    return failed


def notified(app: VeloraApp, text: str) -> bool:
    return any(text in n.message and "disk on fire" in n.message for n in app._notifications)


async def test_no_color_draws_every_view(sample_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """NO_COLOR=1 makes Textual pass every line through its monochrome filter, which needs a
    style on every segment: the charts' padding and blank lines had none, and opening an
    experiment crashed the app."""
    monkeypatch.setenv("NO_COLOR", "1")
    app = still(sample_db)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_experiment(app, pilot)
        await settle(app, 0.3)
        for key in ("2", "3", "1", "escape", "question_mark"):
            await pilot.press(key)
            await settle(app)
        assert app.is_running
        assert isinstance(app.screen, HelpScreen)
        assert screen.key == (sample_db, 3)
        assert app.export_screenshot()


async def test_a_failed_chart_read_is_reported_and_the_next_rows_redraw(
    make_db: MakeDb,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A worker that raises was silent, and the failed read left the charts' pacing waiting
    for it forever: no chart was drawn again."""
    from velora_tui.tui.screens import experiment
    from velora_tui.tui.widgets.charts import MetricChart

    db = make_db(tmp_path / "metrics.db", [RunSpec(planned=100, write=20)])
    app = live(db)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, 0.2)
        failed = raise_once(monkeypatch, experiment, "thin")
        screen = await open_experiment(app, pilot)
        assert failed
        assert notified(app, "read charts failed")
        assert "read charts failed" in caplog.text
        chart = screen.query_one("#chart-reward", MetricChart)
        assert chart.series is None
        add_episode(db, 1, episode_num=21)
        await until(lambda: chart.series is not None and len(chart.series) == 21)


async def test_a_failed_chart_build_is_reported(
    sample_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Widgets' workers too: a chart whose picture cannot be built says so."""
    from velora_tui.tui.widgets.charts import MetricChart

    failed = raise_once(monkeypatch, MetricChart, "paint")
    app = still(sample_db)
    async with app.run_test(size=SIZE) as pilot:
        await open_experiment(app, pilot)
        assert failed
        assert notified(app, "build a chart failed")


async def test_a_failed_sparkline_read_is_asked_again(
    sample_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The experiments a failed sparkline read was for get their sparkline at the next chance
    (they were dropped, and waited for new rows of their own)."""
    from velora_tui.data.database import MetricsDatabase

    failed = raise_once(monkeypatch, MetricsDatabase, "sample")
    app = still(sample_db)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        assert failed
        assert notified(app, "read sparklines failed")
        await pilot.press("down")  # a chance to read what is due, if it had not come yet
        await settle(app)
        assert set(table(app).sparks) == set(table(app).order)


async def test_a_failed_tail_read_is_done_again_with_the_next_rows(
    make_db: MakeDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from velora_tui.data.database import MetricsDatabase

    db = make_db(tmp_path / "metrics.db", [RunSpec(planned=100, write=20)])
    app = live(db)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, 0.2)
        failed = raise_once(monkeypatch, MetricsDatabase, "latest_episodes")
        tail = await open_tail(app, pilot)
        assert failed
        assert notified(app, "read the episodes failed")
        assert not tail.kept
        add_episode(db, 1, episode_num=21)
        await until(lambda: len(tail.kept) == 21)


async def test_a_new_experiment_is_listed_without_waiting_for_the_paced_redraw(
    tmp_path: Path, make_db: MakeDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The list folds a stream's changes into a few redraws a second; a new experiment (a
    training process that just started) is drawn at once all the same. With the pacing made
    30 s long, a new row still shows within a few seconds."""
    from velora_tui.tui.screens import experiments

    monkeypatch.setattr(experiments, "LIST_INTERVAL", 30.0)
    path = make_db(tmp_path / "metrics.db", [5])
    app = live(path)
    async with app.run_test(size=SIZE):
        await until(lambda: len(table(app).order) == 1)
        add_episode(path, 1, episode_num=6)  # a change to a listed run: a paced redraw
        await until(lambda: app.screen.list_pace.timer is not None)  # type: ignore[attr-defined]
        exp_id = execute(
            path,
            "INSERT INTO experiment (agent, env, config, created_at) VALUES (?, ?, ?, ?)",
            ("NewAgent", "NewEnv-v0", "{}", str(datetime.now())),
        )
        assert exp_id is not None
        add_episode(path, exp_id, episode_num=1)
        await until(lambda: "NewEnv-v0" in cell_texts(app), timeout=5)


async def test_the_clocks_and_sparklines_redraws_never_hold_back_the_next_episode(
    tmp_path: Path, make_db: MakeDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redraws no new row asked for (the clock's ages every second, sparklines read) must not
    start the list's pacing window: a run writing 3 episodes a second had nearly every one
    drawn up to 250 ms late (p50 141 ms; 27 ms since). With the pacing made 2 s long, an
    episode right after a heartbeat and the sparkline read it starts is drawn at once."""
    from velora_tui.tui.screens import experiments

    monkeypatch.setattr(experiments, "LIST_INTERVAL", 2.0)
    path = make_db(tmp_path / "metrics.db", [5])
    app = live(path)
    async with app.run_test(size=SIZE):
        await until(lambda: len(table(app).order) == 1)
        screen = app.screen
        assert isinstance(screen, experiments.ExperimentsScreen)
        await asyncio.sleep(2.2)  # the window of the first load's redraw is over
        screen.spark_due.add((path, 1))
        app.heartbeat()  # the clock's redraw, and the sparkline read it starts
        await settle(app, 0.3)
        add_episode(path, 1, episode_num=6)
        await until(lambda: any(text.startswith("6/") for text in cell_texts(app)), timeout=1.5)
        assert screen.list_pace.timer is None


async def test_sparklines_are_sampled_over_the_whole_run(sample_db: Path) -> None:
    """A sparkline is the moving-average reward at episodes spread over the run, first and
    last included (read with a seek each, whatever the run's length)."""
    app = still(sample_db)
    async with app.run_test(size=SIZE):
        await settle(app)
        sparks = table(app).sparks
        key = (sample_db, 1)
        values = list(sparks[key])
        assert len(values) == 60
        database = app.monitor.databases[sample_db]
        rows = database.latest_episodes(1, 120)
        assert values[0] == rows[0].reward_moving_avg
        assert values[-1] == rows[-1].reward_moving_avg


async def test_a_long_run_is_charted_from_a_sample_first(
    sample_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Charts of a run too long to read at once are drawn from sampled episodes first (their
    titles say so), then from every row."""
    from velora_tui.tui.screens import experiment
    from velora_tui.tui.widgets.charts import MetricChart

    monkeypatch.setattr(experiment, "PREVIEW_ABOVE", 50)
    shown: list[tuple[bool, int]] = []
    post = experiment.ExperimentScreen.post_series

    def recording(self: experiment.ExperimentScreen, series: Any, builds: Any) -> None:
        shown.append((series.complete, series.rows))
        post(self, series, builds)

    monkeypatch.setattr(experiment.ExperimentScreen, "post_series", recording)
    app = still(sample_db)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        table(app).select_key((sample_db, 1))  # 120 episodes: above the threshold
        await pilot.press("enter")
        await settle(app)
        assert shown[0][0] is False  # the sampled first look
        assert shown[-1] == (True, 120)  # then every row
        chart = app.screen.query_one("#chart-reward", MetricChart)
        assert chart.series is not None
        assert chart.series.complete


async def test_the_list_marks_what_the_scan_has_not_added_up(
    sample_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Until the scan has added a first load up, the list shows the episode count estimated
    from the episode numbers (`~`) and no best reward (`…`); then the exact values."""
    from velora_tui.data.database import MetricsDatabase

    release = threading.Event()
    real = MetricsDatabase._scan_step  # what every scan step runs, in the source's lane

    def held(self: MetricsDatabase) -> set[int] | None:
        return real(self) if release.is_set() else None

    monkeypatch.setattr(MetricsDatabase, "_scan_step", held)
    app = still(sample_db)
    async with app.run_test(size=SIZE):
        await settle(app)
        texts = cell_texts(app)
        assert "~120/120" in texts
        assert "…" in texts
        assert "51.00" not in texts
        release.set()
        app.add_up()  # what a change of the file would start again
        await settle(app)
        texts = cell_texts(app)
        assert "120/120" in texts
        assert "…" not in texts
        assert "51.00" in texts


async def test_a_redraw_of_the_list_draws_only_the_cells_that_changed(
    make_db: MakeDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DataTable forgets every cell's drawing at any change; the list draws again only the cells
    whose value changed (counted), shows each new value, and its columns follow their widest
    cell, wider and narrower again."""
    from textual.widgets.data_table import ColumnKey

    from velora_tui.data.records import Update
    from velora_tui.tui.render import number_cell
    from velora_tui.tui.widgets.experiment_table import ExperimentTable

    db = make_db(tmp_path / "metrics.db", [RunSpec(planned=100, write=5) for _ in range(3)])
    app = still(db)
    async with app.run_test(size=SIZE):
        await settle(app)
        grid = table(app)

        def lines() -> list[str]:
            return [grid.render_line(y).text for y in range(grid.row_count + 1)]

        before = lines()
        drawn: list[tuple[int, int]] = []
        real_draw = ExperimentTable.draw_cell  # every body cell drawn anew goes through it

        def counted(self: ExperimentTable, value: object, row: int, column: int, *args: Any) -> Any:
            drawn.append((row, column))
            return real_draw(self, value, row, column, *args)

        monkeypatch.setattr(ExperimentTable, "draw_cell", counted)
        summary = app.monitor.summary((db, 2))
        assert summary is not None
        row = grid.order.index((db, 2))
        columns = grid.shown_columns

        async def change(**values: float) -> list[str]:
            drawn.clear()
            for name, value in values.items():
                setattr(summary, name, value)
            app.publish([Update(db, experiments={2})])
            await settle(app)
            after = lines()
            # Every other line is drawn as it was (a column's width aside).
            assert [a.split() for i, a in enumerate(after) if i != row + 1] == [
                b.split() for i, b in enumerate(before) if i != row + 1
            ]
            return after[row + 1].split()

        # A new count, as wide as the one before: that one cell is drawn, no other.
        assert "6/100" in await change(episodes=6)
        assert drawn == [(row, columns.index("episodes"))]
        # A wider value, then a narrower one: the column's cells are drawn at its new width,
        # which is that of its widest cell.
        for value in (-1234567.25, 1.5):
            assert number_cell(value).plain in await change(last_reward=value)
            assert {column for _, column in drawn} == {columns.index("last")}
            width = grid.columns[ColumnKey("last")].content_width
            assert width == max(max(grid.rendered[k][5].cell_len for k in grid.order), len("Last"))
        assert width < len(number_cell(-1234567.25))


async def test_the_list_draws_a_cell_exactly_as_a_datatable_does(
    make_db: MakeDb, tmp_path: Path
) -> None:
    """The list's own drawing of a cell (ExperimentTable.draw_cell) gives DataTable's segments,
    styles and meta included, for every kind of cell it shows and some it may: wider than its
    column, wide characters, several styles, empty, on the cursor's row, hovered or not, at
    any width."""
    from rich.style import Style
    from rich.text import Text
    from textual.coordinate import Coordinate
    from textual.widgets import DataTable

    db = make_db(tmp_path / "metrics.db", [RunSpec(planned=100, write=5) for _ in range(3)])
    app = still(db)
    async with app.run_test(size=SIZE):
        await settle(app)
        grid = table(app)
        cells = [
            Text(""),
            Text("5/100", justify="right"),
            Text.assemble(("12", ""), (" !", "bold red"), justify="right"),
            Text("NeuroFlowAgentWithAVeryLongName", style="bold"),
            Text("训练运行 🚀 x", style="cyan"),
            Text("  padded  ", justify="right", style="dim"),
            Text("-1.23e+06", justify="left"),
            Text("ellipsis me please", overflow="ellipsis"),
            Text("● running", style="green"),
        ]
        compared = 0
        for row in range(grid.row_count):
            for column in range(len(grid.columns)):
                row_key, column_key = grid.coordinate_to_cell_key(Coordinate(row, column))
                for value in cells:
                    grid.update_cell(row_key, column_key, value)
                    for width in (1, 2, 3, 5, 8, 12, 30):
                        for cursor, hover in ((False, False), (True, False), (False, True)):
                            base = Style(bgcolor="grey11") if row % 2 else Style()
                            grid._cell_render_cache.clear()
                            want = DataTable._render_cell(
                                grid, row, column, base, width, cursor=cursor, hover=hover
                            )
                            got = grid.draw_cell(value, row, column, base, width, cursor, hover)
                            # No room inside the padding: DataTable's own drawing is used.
                            assert (got is None) == (width <= 2 * grid.cell_padding)
                            if got is not None:
                                assert got == want, (value, width, cursor, hover)
                                compared += 1
        assert compared == grid.row_count * len(grid.columns) * len(cells) * 5 * 3


async def test_rows_for_a_hidden_tail_do_not_look_up_its_place(
    make_db: MakeDb, tmp_path: Path
) -> None:
    """While the charts show, rows kept by the hidden tail never ask where the tail is on the
    screen (Textual lays out every widget anew to answer for a hidden one: a refresh asks its
    size); once its tab shows, the tail is sized for them and follows its newest row."""
    db = make_db(tmp_path / "metrics.db", [RunSpec(planned=500, write=50)])
    app = live(db)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_experiment(app, pilot)
        tail = screen.query_one(EpisodeTable)
        looked_up: list[object] = []
        real_find = screen.find_widget

        def find_widget(widget: Any) -> Any:
            if widget is tail:
                looked_up.append(widget)
            return real_find(widget)

        screen.find_widget = find_widget  # type: ignore[method-assign]
        for num in range(51, 91):
            add_episode(db, 1, episode_num=num)
            await asyncio.sleep(0.01)
        await until(lambda: len(tail.kept) == 40)
        await settle(app, 0.2)
        assert not tail.shown()
        assert looked_up == []
        await pilot.press("2")
        await until(lambda: len(tail.kept) == 90)
        await settle(app, 0.2)
        assert tail.shown()
        assert tail.following
        assert tail.cursor_row == 89
        assert tail.scroll_y == tail.max_scroll_y > 0
        assert "90" in tail_lines(tail)[-1]
