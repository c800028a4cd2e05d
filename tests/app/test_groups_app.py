"""Groups in the app (Pilot): the grouped list, folding, keys, the filter, the group chart, the
comparison of groups and the sweep table, on a generated sweep (3 configs x 5 seeds, ragged
lengths, one run still running) and with a real writer process."""

from __future__ import annotations

import json
import math
import sqlite3
from datetime import datetime
from pathlib import Path

import pytest
from rich.console import Console
from textual.coordinate import Coordinate
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, SelectionList, Static

from tests.support.app import settle
from tests.support.databases import SWEEP_BATCH_SIZES, add_episode, build_sweep_db, execute
from tests.support.processes import Simulator
from tests.support.reading import query
from tests.support.waiting import until
from velora_tui.tui.app import Settings, VeloraApp, make_app
from velora_tui.tui.screens.experiment import ExperimentScreen
from velora_tui.tui.screens.groups import BAND_HELP, GroupChart, GroupChartScreen, KeyPicker
from velora_tui.tui.screens.help import HelpScreen, help_tables, sections
from velora_tui.tui.screens.sweep import SweepScreen
from velora_tui.tui.widgets.experiment_table import ExperimentTable
from velora_tui.tui.widgets.group_table import FOLD_HELP, GroupTable

pytestmark = pytest.mark.ui


def trimmed_mean(values: list[float] | tuple[float, ...]) -> float:
    """scipy.stats.trim_mean(values, 0.25), written out."""
    ordered = sorted(values)
    cut = len(ordered) // 4
    kept = ordered[cut : len(ordered) - cut]
    return sum(kept) / len(kept)


NOW = datetime(2026, 11, 23, 19, 45, 0)


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    return build_sweep_db(tmp_path / "metrics.db", NOW)


def still(path: Path) -> VeloraApp:
    return make_app([path], Settings(live=False, clock=lambda: NOW))


def groups_of(app: VeloraApp) -> GroupTable:
    return app.screen.query_one(GroupTable)


def labels(app: VeloraApp) -> list[str]:
    return [group.label() for group in groups_of(app).groups]


async def test_g_groups_the_seeds_and_folds(sweep: Path) -> None:
    app = still(sweep)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app)
        await pilot.press("g")
        await settle(app)
        table = groups_of(app)
        assert table.display
        assert app.focused is table
        assert not app.screen.query_one(ExperimentTable).display
        assert labels(app) == ["batch_size=64", "batch_size=32", "batch_size=128"]
        assert table.row_count == 3
        await pilot.press("right")
        await settle(app)
        assert table.row_count == 8
        runs = [ref.run for ref in table.refs if ref.run is not None]
        assert sorted(key[1] for key in runs) == [6, 7, 8, 9, 10]
        await pilot.press("down", "left")
        await settle(app)
        assert table.row_count == 3
        assert table.cursor_row == 0
        # Enter on a run opens it.
        await pilot.press("right", "down", "enter")
        await settle(app)
        assert isinstance(app.screen, ExperimentScreen)
        assert app.screen.key == runs[0]
        await pilot.press("escape")
        await settle(app)
        await pilot.press("g")
        await settle(app)
        assert not groups_of(app).display
        assert app.screen.query_one(ExperimentTable).display


async def test_group_row_shows_the_groups_figures(sweep: Path) -> None:
    app = still(sweep)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app)
        await pilot.press("g")
        await settle(app)
        cells = [cell.plain for cell in groups_of(app).rendered[groups_of(app).refs[0]]]
        finals = [
            r[0]
            for r in query(
                sweep,
                "SELECT reward_moving_avg FROM episode WHERE id IN (SELECT max(id) FROM episode"
                " WHERE experiment_id IN (6,7,8,9,10) GROUP BY experiment_id)",
            )
        ]
        mean = sum(finals) / len(finals)
        assert cells[1] == "batch_size=64"
        assert cells[2] == "5 (1 running, 1 stalled, 3 done)"  # each run counted once
        assert cells[3] == "120-200"
        assert cells[4].startswith(f"{mean:.2f} ± ")
        iqm = groups_of(app).groups[0].final_iqm()
        assert iqm.value == pytest.approx(trimmed_mean(finals))
        assert cells[5] == f"{iqm.value:.2f} [{iqm.low:.2f}, {iqm.high:.2f}] "
        assert cells[6] == "1 min"  # the running run: 80 episodes left at one a second
        assert cells[7]  # the mean curve's sparkline
        best = groups_of(app).groups[0].best_iqm()
        assert cells[9] == f"{best.value:.2f} [{best.low:.2f}, {best.high:.2f}] "


async def test_one_run_has_no_spread_and_two_runs_a_wide_interval(sweep: Path) -> None:
    """`464.27`, not `464.27 ± 0.00`, and `—` for the interval of a group of one; `†` on the
    interval of a group of two."""
    execute(sweep, "UPDATE experiment SET config = 'not json' WHERE id = 3")  # alone
    config = json.dumps({"seed": 1, "tag": "pair", "train_params": {}})
    execute(sweep, "UPDATE experiment SET config = ? WHERE id IN (1, 2)", (config,))
    app = still(sweep)
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(app)
        await pilot.press("g")
        await settle(app)
        table = groups_of(app)
        rows = {
            len(group.runs): [cell.plain for cell in table.rendered[ref]]
            for ref in table.refs
            for group in [table.group_of(ref)]
            if group is not None and ref.run is None
        }
        alone = rows[1]
        assert "±" not in alone[4]
        assert alone[5].endswith(" —")
        assert rows[2][5].endswith("]†")
        assert "±" in rows[5][4]


async def test_the_filter_filters_groups(sweep: Path) -> None:
    app = still(sweep)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app)
        await pilot.press("g", "slash")
        for char in "cfg.train_params.batch_size!=32":
            await pilot.press(char)
        await pilot.press("enter")
        await settle(app, 0.3)
        assert labels(app) == ["batch_size=64", "batch_size=128"]
        box = app.screen.query_one("#filter", Input)
        box.value = "status:running"
        await settle(app, 0.3)
        assert [len(g.runs) for g in groups_of(app).groups] == [1]
        box.value = "nothing-matches-this"
        await settle(app, 0.3)
        assert not groups_of(app).display
        assert app.screen.query_one("#empty").display


async def test_group_terms_of_the_filter_keep_groups_by_their_figures(sweep: Path) -> None:
    app = still(sweep)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app)
        await pilot.press("g")
        await settle(app, 0.3)
        now = app.now()
        finals = {g.label(): g.figures(now)["final"] for g in groups_of(app).groups}
        assert len(finals) == 3
        middle = sorted(finals.values())[1]
        box = app.screen.query_one("#filter", Input)
        box.value = f"group.final>={middle}"
        await settle(app, 0.3)
        kept = {label for label, final in finals.items() if final >= middle}
        assert set(labels(app)) == kept
        assert len(kept) == 2
        # Run terms choose the runs first; the group's figures are then of those runs.
        box.value = "status!=running group.runs>=5"
        await settle(app, 0.3)
        assert set(labels(app)) == {"batch_size=32", "batch_size=128"}  # 64 has 4 not running
        box.value = "group.finale>3"
        await settle(app, 0.3)
        assert "unknown group field" in str(app.screen.query_one("#filter-error").render())


async def test_keys_picked_or_typed(sweep: Path) -> None:
    app = still(sweep)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app)
        await pilot.press("G")
        await settle(app)
        assert isinstance(app.screen, KeyPicker)
        picker = app.screen.query_one(SelectionList)
        assert picker.get_option_at_index(0).value == "train_params.batch_size"
        await pilot.press("space")  # pick it
        box = app.screen.query_one("#key-input", Input)
        assert box.value == "train_params.batch_size"
        box.value += ", cfg.torch.device"
        box.focus()
        await pilot.press("enter")
        await settle(app)
        assert sorted(labels(app)) == sorted(
            f"batch_size={b} device={d}" for b in SWEEP_BATCH_SIZES for d in ("cpu", "cuda:0")
        )
        # o: the next sort column (best reward), and back round to final reward.
        finals = [g.final().mean for g in groups_of(app).groups]
        assert finals == sorted(finals, reverse=True)
        await pilot.press("o")
        await settle(app)
        bests = [g.best().mean for g in groups_of(app).groups]
        assert bests == sorted(bests, reverse=True)
        await pilot.press("G", "escape")
        await settle(app)
        assert len(groups_of(app).groups) == 6


async def test_group_chart_and_bands(sweep: Path) -> None:
    app = still(sweep)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app)
        await pilot.press("g", "enter")
        await settle(app, 0.2)
        assert isinstance(app.screen, GroupChartScreen)
        chart = app.screen.query_one(GroupChart)
        await until(lambda: bool(chart.curves))
        (curve,) = chart.curves
        assert curve.exact
        assert curve.count[0] == 5
        assert curve.count[-1] == 3
        assert sorted(curve.ends) == [120.0, 170.0, 200.0, 200.0, 200.0]
        assert chart.band == "std"
        await pilot.press("b")
        assert chart.band == "min-max"
        await pilot.press("b")
        assert chart.band == "ci"
        middle, low, high = curve.intervals()
        for values, iqm, lowest, highest in zip(curve.values, middle, low, high, strict=True):
            assert iqm == pytest.approx(trimmed_mean(values))
            assert min(values) <= lowest <= iqm <= highest <= max(values)
        await pilot.press("b")
        assert chart.band == "std"
        await pilot.press("x")
        await settle(app, 0.2)
        await until(lambda: chart.options.x_axis == "steps" and chart.curves[0].x[-1] > 1000)
        await pilot.press("escape")
        await settle(app)
        # Two marked groups compared: one curve each.
        await pilot.press("space", "space", "c")
        await settle(app, 0.2)
        assert isinstance(app.screen, GroupChartScreen)
        chart = app.screen.query_one(GroupChart)
        await until(lambda: len(chart.curves) == 2)
        assert [g.label() for g in app.screen.groups] == ["batch_size=64", "batch_size=32"]
        legend = str(app.screen.query_one("#group-legend", Static).render())
        assert legend.count("IQM ") == 2
        first, second = app.screen.groups
        beats = first.beats(second)
        assert f"P(1st beats) {beats.value:.2f} [{beats.low:.2f}, {beats.high:.2f}]" in legend


async def test_sweep_table(sweep: Path) -> None:
    app = still(sweep)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app)
        await pilot.press("w")
        await settle(app)
        if not isinstance(app.screen, SweepScreen):  # the configs were being read
            await pilot.press("w")
            await settle(app)
        assert isinstance(app.screen, SweepScreen)
        table = app.screen.query_one("#sweep", DataTable)
        assert [str(c.label) for c in table.columns.values()] == [
            "#", "batch_size", "Runs", "Episodes", "Final reward", "Final IQM [95% CI]",
            "Best reward", "Best IQM [95% CI]", "Episodes to target",
        ]  # fmt: skip
        rows = [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]
        assert [row[1] for row in rows] == ["64", "32", "128"]
        await pilot.press("enter")
        await settle(app)
        assert isinstance(app.screen, GroupChartScreen)


async def test_the_help_lists_the_group_keys(sweep: Path) -> None:
    app = still(sweep)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app)
        await pilot.press("question_mark")
        await settle(app)
        assert isinstance(app.screen, HelpScreen)
        rows = {what: keys for _, found in sections(app) for keys, what in found}
        assert rows["group the runs: seeds of a config / ungroup"] == "g"
        assert rows["group by config keys: pick among those that differ, or type them"] == "G"
        assert rows["groups: next sort column"] == "o"
        assert rows[BAND_HELP] == "b"
        assert rows[FOLD_HELP] == "→/←"
        assert any(what.startswith("sweep table") for what in rows)
        shown = help_tables(app)
        console = Console(width=200, record=True)
        console.print(shown)
        text = console.export_text()
        assert "interquartile mean over the runs" in text
        assert "two runs: the interval is wide" in text


async def test_a_group_chart_follows_a_writer(tmp_path: Path, simulator: Simulator) -> None:
    """A real writer: the group's curve grows as its runs write."""
    path = tmp_path / "metrics.db"
    simulator(path, episodes=400, rate=40, experiments=2, extra=["--parallel"])
    await_file = path
    app = make_app([path], Settings(poll=True))
    async with app.run_test(size=(120, 40)) as pilot:
        await until(lambda: await_file.exists() and bool(app.monitor.summaries()), timeout=20)
        await until(lambda: len(app.monitor.summaries()) == 2, timeout=20)
        await pilot.press("g")
        await settle(app, 0.3)
        await until(lambda: bool(groups_of(app).groups), timeout=20)
        await pilot.press("enter")
        chart = app.screen.query_one(GroupChart)
        await until(lambda: bool(chart.curves) and len(chart.curves[0]) > 0, timeout=20)
        first = chart.curves[0].x[-1]
        await until(lambda: chart.curves[0].x[-1] > first + 20, timeout=20)
        with sqlite3.connect(path) as conn:
            done = conn.execute("SELECT max(episode_num) FROM episode").fetchone()[0]
        assert chart.curves[0].x[-1] <= done


async def test_hostile_values_name_groups_safely(sweep: Path) -> None:
    """Markup, escape sequences and control characters in config values: shown as text."""
    config = json.dumps({"seed": 1, "tag": "[/oops]\x1b[31m[bold]x\x07"})
    execute(sweep, "UPDATE experiment SET config = ? WHERE id IN (1, 2)", (config,))
    execute(sweep, "UPDATE experiment SET config = '{not json' WHERE id = 3")
    app = still(sweep)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app)
        await pilot.press("G")
        await settle(app)
        assert isinstance(app.screen, KeyPicker)
        box = app.screen.query_one("#key-input", Input)
        box.value = "tag"
        box.focus()
        await pilot.press("enter")
        await settle(app)
        table = groups_of(app)
        names = [cells[1].plain for cells in table.rendered.values()]
        assert "tag=[/oops][bold]x " in names  # the bell became a space
        assert all("\x1b" not in name and "\x07" not in name for name in names)
        await pilot.press("enter")  # the chart of the hostile group, legend and all
        await settle(app, 0.2)
        assert isinstance(app.screen, GroupChartScreen)
        await pilot.press("escape", "g", "g")  # seed grouping: the unreadable config alone
        await settle(app)
        assert sorted(len(g.runs) for g in groups_of(app).groups) == [1, 2, 2, 5, 5]


async def test_groups_show_their_episodes_to_target(sweep: Path) -> None:
    """CartPole-v1's target is 475 (Gymnasium's): each run's episode of reaching it, read in a
    thread, and the group's IQM of them in the list and the sweep table."""
    app = still(sweep)
    async with app.run_test(size=(200, 40)) as pilot:
        await settle(app)
        await pilot.press("g")
        await settle(app)
        table = groups_of(app)
        await until(lambda: len(table.to_target.reached) == 15)
        await settle(app)
        for group in table.groups:
            for run in group.runs:
                rows = query(
                    sweep,
                    "SELECT episode_num FROM episode WHERE experiment_id = ? AND"
                    " reward_moving_avg >= 475 ORDER BY id LIMIT 1",
                    (run.id,),
                )
                assert group.reached[run.key] == (float(rows[0][0]) if rows else math.inf)
            estimate = group.to_target()
            assert estimate is not None
            cell = table.rendered[table.refs[table.groups.index(group)]][-1].plain
            assert cell.endswith(f"({group.reached_count()}/{len(group.runs)})")
        in_list = {
            group.ident: table.rendered[table.refs[table.groups.index(group)]][-1].plain
            for group in table.groups
        }
        await pilot.press("w")
        await settle(app)
        screen = app.screen
        assert isinstance(screen, SweepScreen)
        sweep_table = screen.query_one("#sweep", DataTable)
        assert str(list(sweep_table.columns.values())[-1].label) == "Episodes to target"

        def in_sweep() -> dict[str, str]:
            last = len(sweep_table.columns) - 1
            return {
                group.ident: str(sweep_table.get_cell_at(Coordinate(row, last))).strip()
                for row, group in enumerate(screen.order)
            }

        # The same figures as the list's (read for the sweep's own groups), "-" nowhere.
        await until(lambda: in_sweep() == {k: v.strip() for k, v in in_list.items()})
        assert all(cell != "-" for cell in in_sweep().values())


async def grouped(app: VeloraApp, pilot: Pilot[None]) -> None:
    """The list grouped by seeds (`g`), once its groups are shown."""
    await settle(app)
    await pilot.press("g")
    await until(lambda: bool(groups_of(app).groups), timeout=20)


def start_a_run(path: Path, like: int, seed: int | None, episodes: int) -> int:
    """A run that starts now with experiment `like`'s config (its seed changed, unless None),
    and its first `episodes` episodes."""
    ((agent, env, config),) = query(
        path, "SELECT agent, env, config FROM experiment WHERE id = ?", (like,)
    )
    settings = json.loads(config)
    if seed is not None:
        settings["seed"] = seed
    exp_id = execute(
        path,
        "INSERT INTO experiment (agent, env, config, created_at) VALUES (?, ?, ?, ?)",
        (agent, env, json.dumps(settings), str(NOW)),
    )
    assert exp_id is not None
    for number in range(1, episodes + 1):
        add_episode(path, exp_id, episode_num=number, reward=float(number))
    return exp_id


async def test_a_group_chart_takes_in_a_seed_that_starts_later(sweep: Path) -> None:
    """A new seed of a config shown on the group chart (a run started after the chart was
    opened) joins its group there: the legend counts it and the curve is drawn over it too;
    a run of another config (seed and all) does not."""
    app = make_app([sweep], Settings(poll=True, clock=lambda: NOW))
    async with app.run_test(size=(120, 40)) as pilot:
        await grouped(app, pilot)
        await pilot.press("enter")
        await until(lambda: isinstance(app.screen, GroupChartScreen))
        screen = app.screen
        assert isinstance(screen, GroupChartScreen)
        chart = screen.query_one(GroupChart)
        await until(lambda: bool(chart.curves))
        (group,) = screen.groups
        runs = len(group.runs)
        new_id = start_a_run(sweep, group.runs[0].id, 4242, 30)
        await until(lambda: len(group.runs) == runs + 1, timeout=20)
        assert group.runs[-1].id == new_id
        await until(lambda: f"{runs + 1} runs" in str(screen.query_one("#group-legend").render()))
        await until(lambda: bool(chart.curves) and chart.curves[0].count[0] == runs + 1)
        other = next(s.id for s in app.monitor.summaries() if s.key not in group.keys)
        stranger = start_a_run(sweep, other, None, 1)
        await until(lambda: len(app.monitor.summaries()) == 17, timeout=20)
        await settle(app, 0.5)
        assert stranger not in [run.id for run in group.runs]
        assert len(group.runs) == runs + 1


async def test_the_sweep_table_takes_in_a_seed_that_starts_later(sweep: Path) -> None:
    """A new seed joins its group's row of the open sweep table: its runs counted, its
    episodes to the target read with the others'."""
    app = make_app([sweep], Settings(poll=True, clock=lambda: NOW))
    async with app.run_test(size=(200, 40)) as pilot:
        await grouped(app, pilot)
        await pilot.press("w")
        await settle(app)
        if not isinstance(app.screen, SweepScreen):  # the configs were being read
            await pilot.press("w")
            await settle(app)
        screen = app.screen
        assert isinstance(screen, SweepScreen)
        table = screen.query_one("#sweep", DataTable)
        group = screen.groups[0]
        runs = len(group.runs)
        await until(lambda: len(screen.to_target.reached) == 15, timeout=20)
        new_id = start_a_run(sweep, group.runs[0].id, 4242, 30)
        await until(lambda: len(group.runs) == runs + 1, timeout=20)
        await until(lambda: new_id in {key[1] for key in screen.to_target.reached}, timeout=20)
        row = screen.order.index(group)
        runs_column = [str(c.label) for c in table.columns.values()].index("Runs")
        await until(
            lambda: str(table.get_cell_at(Coordinate(row, runs_column))).startswith(f"{runs + 1}")
        )
