"""Grouping and aggregation (velora_tui/data/groups.py, data/group_reads.py).

The aggregation is checked against a straightforward reference (every x, every run, plain
loops and the statistics module) on ragged runs with inf/NaN values, and single-run groups;
the grouping and a group's figures on a generated sweep (3 configs x 5 seeds) against SQL run
on the file itself.
"""

from __future__ import annotations

import itertools
import math
import shutil
import sqlite3
import statistics
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.databases import (
    SWEEP_BATCH_SIZES,
    add_episode,
    build_sweep_db,
    execute,
    run_file,
)
from tests.support.reading import FarFiles, add_up, query
from velora_tui.data import group_reads
from velora_tui.data.database import FAR_READS, MetricsDatabase
from velora_tui.data.group_reads import ReachedReader, group_curve, read_configs, read_series
from velora_tui.data.groups import (
    Aggregate,
    Curve,
    Group,
    Joining,
    Stat,
    aggregate,
    bin_of,
    group_runs,
    is_seed_key,
    normalize_key,
    sort_groups,
    spark_curve,
    take_in_runs,
    varied_keys,
)
from velora_tui.data.monitor import Monitor
from velora_tui.data.records import ExperimentSummary, Key, RunStatus
from velora_tui.data.series import SeriesReader

NOW = datetime(2026, 11, 23, 19, 45, 0)

# -- the reference ---------------------------------------------------------------------------


def reference(curves: Sequence[Curve], points: int) -> list[tuple[float, int, float, float]]:
    """(x, runs, mean, std) per point, the plain way: every x (or bin), every run."""
    runs = [
        [(x, y) for x, y in zip(xs, ys, strict=False) if math.isfinite(x) and math.isfinite(y)]
        for xs, ys in curves
    ]
    every_x = sorted({x for run in runs for x, _ in run})
    found = []
    if len(every_x) <= points:
        for x in every_x:  # every y there counts once: SELECT avg(y) ... GROUP BY x
            values = [y for run in runs for at, y in run if at == x]
            n = sum(any(at == x for at, _ in run) for run in runs)
            found.append((x, n, statistics.fmean(values), statistics.pstdev(values)))
        return found
    low, high = every_x[0], every_x[-1]
    for index in range(points):
        values = []
        for run in runs:
            mine = [y for x, y in run if bin_of(x, low, high, points) == index]
            if mine:
                values.append(statistics.fmean(mine))
        if values:
            middle = low + (high - low) * (index + 0.5) / points
            found.append((middle, len(values), statistics.fmean(values), statistics.pstdev(values)))
    return found


def close(a: float, b: float, scale: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9 * max(1.0, scale))


def check(got: Aggregate, curves: Sequence[Curve], points: int) -> None:
    want = reference(curves, points)
    assert len(got) == len(want)
    scale = max((abs(y) for _, ys in curves for y in ys if math.isfinite(y)), default=1.0)
    for i, (x, n, mean, std) in enumerate(want):
        assert close(got.x[i], x, max(abs(x), 1.0))
        assert got.count[i] == n
        assert close(got.mean[i], mean, scale)
        assert math.isclose(got.std[i], std, rel_tol=1e-6, abs_tol=1e-6 * scale)
        assert got.low[i] <= got.mean[i] + 1e-9 * scale
        assert got.mean[i] <= got.high[i] + 1e-9 * scale
        assert 1 <= got.count[i] <= len(curves)


values = st.one_of(
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
    st.sampled_from([math.nan, math.inf, -math.inf]),
)


@st.composite
def ragged_runs(draw: st.DrawFn, integer_x: bool = True) -> list[Curve]:
    """1-6 runs of different lengths, their x ascending (episodes, or times with repeats)."""
    curves: list[Curve] = []
    for _ in range(draw(st.integers(1, 6))):
        if integer_x:
            xs = sorted(draw(st.sets(st.integers(1, 80), max_size=40)))
            x = [float(v) for v in xs]
        else:
            times: list[float] = draw(st.lists(st.floats(0, 1e4, allow_nan=False), max_size=40))
            x = sorted(times)
            last_unknown: bool = draw(st.booleans())
            if x and last_unknown:
                x[-1] = math.nan  # a row without a usable time
        y = draw(st.lists(values, min_size=len(x), max_size=len(x)))
        curves.append((x, y))
    return curves


@settings(max_examples=150, deadline=None)
@given(ragged_runs(), st.integers(1, 100))
def test_aggregate_matches_reference_on_ragged_runs(curves: list[Curve], points: int) -> None:
    got = aggregate(curves, points)
    check(got, curves, points)
    distinct = {x for xs, ys in curves for x, y in zip(xs, ys, strict=False) if math.isfinite(y)}
    assert got.exact == (len(distinct) <= points)


@settings(max_examples=100, deadline=None)
@given(ragged_runs(integer_x=False), st.integers(1, 50))
def test_aggregate_matches_reference_on_uneven_x(curves: list[Curve], points: int) -> None:
    check(aggregate(curves, points), curves, points)


@settings(max_examples=100, deadline=None)
@given(st.lists(values, max_size=60), st.integers(1, 100))
def test_a_single_run_is_its_own_mean(ys: list[float], points: int) -> None:
    xs = [float(i + 1) for i in range(len(ys))]
    got = aggregate([(xs, ys)], points)
    finite = [(x, y) for x, y in zip(xs, ys, strict=True) if math.isfinite(y)]
    assert set(got.count) <= {1}
    assert all(s == 0 for s in got.std)
    assert got.low == got.high == got.mean
    if got.exact:
        assert list(zip(got.x, got.mean, strict=True)) == finite
    assert got.ends == [finite[-1][0] if finite else math.nan] or not finite


def test_nothing_finite_is_an_empty_curve() -> None:
    got = aggregate([([1.0, 2.0], [math.nan, math.inf]), ([], [])], 10)
    assert len(got) == 0
    assert all(math.isnan(end) for end in got.ends)


@given(st.floats(-1e300, 1e300), st.floats(-1e300, 1e300), st.integers(1, 500))
def test_bins_cover_the_range(a: float, b: float, points: int) -> None:
    low, high = min(a, b), max(a, b)
    if low == high:
        return
    assert bin_of(low, low, high, points) == 0
    assert bin_of(high, low, high, points) == points - 1
    middle = bin_of(low / 2 + high / 2, low, high, points)
    assert 0 <= middle < points


@given(st.lists(values, max_size=30))
def test_stat_is_population_mean_and_std_of_the_finite(numbers: list[float]) -> None:
    stat = Stat.of(numbers)
    finite = [v for v in numbers if math.isfinite(v)]
    assert stat.count == len(finite)
    if finite:
        assert math.isclose(stat.mean, statistics.fmean(finite), rel_tol=1e-9, abs_tol=1e-6)
        want = statistics.pstdev(finite)
        assert math.isclose(stat.std, want, rel_tol=1e-6, abs_tol=1e-6)
    else:
        assert math.isnan(stat.mean)
        assert math.isnan(stat.std)


def test_spark_curve_averages_runs_by_episode() -> None:
    # Two runs of 100 and 50 episodes, 10 points each: their values placed at their episodes.
    long = [float(i) for i in range(10)]
    short = [100.0] * 10
    curve = spark_curve([(100, long), (50, short)], points=10)
    assert len(curve) == 10
    assert curve[-1] == 9.0  # only the long run reaches the end
    assert curve[0] == pytest.approx((0.0 + 100.0) / 2)


# -- keys ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "seed"),
    [
        ("seed", True),
        ("env_params.seed", True),
        ("seed[0]", True),
        ("torch.device", True),
        ("Seed", True),
        ("seeds", False),
        ("train_params.batch_size", False),
        ("model_details.seed_count", False),
    ],
)
def test_seed_keys(key: str, seed: bool) -> None:
    assert is_seed_key(key) is seed


def test_keys_as_typed() -> None:
    assert normalize_key(" cfg.model_details.actor_neurons ") == "model_details.actor_neurons"
    assert normalize_key("CFG.seed") == "seed"
    assert normalize_key("train_params.batch_size") == "train_params.batch_size"


# -- a sweep ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_sweep_db(tmp_path_factory.mktemp("sweep") / "metrics.db", NOW)


def loaded(*paths: Path) -> Monitor:
    monitor = Monitor(list(paths))
    monitor.refresh()
    for database in monitor.databases.values():
        add_up(database)
    return monitor


def configs_of(monitor: Monitor) -> dict[Any, Any]:
    return read_configs(monitor.databases, [s.key for s in monitor.summaries()])


def test_runs_that_join_later_are_taken_in_by_the_groups_shown(sweep: Path) -> None:
    """The groups shown (a chart of two of them) take in the runs that a grouping made later
    puts in them; the third group's runs, and the names shown, stay out and as they were."""
    monitor = loaded(sweep)
    summaries = monitor.summaries()
    configs = configs_of(monitor)
    first, second, third = group_runs(summaries, configs)
    late = {first.runs[-1].key, second.runs[0].key, third.runs[0].key}
    earlier = group_runs([s for s in summaries if s.key not in late], configs)
    shown = [g for g in earlier if g.ident in (first.ident, second.ident)]
    before = {g.ident: (list(g.keys), g.name) for g in shown}
    assert not take_in_runs(shown, [])  # nothing grouped now: nothing joins
    assert take_in_runs(shown, group_runs(summaries, configs))
    for group in shown:
        keys, name = before[group.ident]
        assert group.keys[: len(keys)] == keys  # the runs shown stay first, in their order
        assert len(group.keys) == len(keys) + 1
        assert group.name == name
    assert {key for g in shown for key in g.keys} == set(first.keys) | set(second.keys)
    assert not take_in_runs(shown, group_runs(summaries, configs))  # once only
    monitor.close()


def test_joining_groups_again_only_for_runs_not_yet_placed(sweep: Path) -> None:
    """A run seen changing outside the groups shown is grouped for until its config is read;
    one grouped elsewhere is never grouped for again; nothing changing, nothing grouped."""
    monitor = loaded(sweep)
    summaries = monitor.summaries()
    configs = configs_of(monitor)
    first, second, _ = group_runs(summaries, configs)
    late = first.runs[-1].key
    unread = {late}
    asked: list[int] = []

    def regroup() -> tuple[list[Group], list[Key]]:
        asked.append(1)
        known = [s for s in summaries if s.key not in unread]
        return group_runs(known, configs), list(unread)

    shown = next(
        g
        for g in group_runs([s for s in summaries if s.key != late], configs)
        if g.ident == first.ident
    )
    joining = Joining(regroup)
    assert not joining.take_in([shown], [])  # nothing changed: not grouped for
    assert asked == []
    assert not joining.take_in([shown], [late])  # its config not read yet
    assert not joining.take_in([shown], [])  # ... still not: grouped for again
    assert len(asked) == 2
    unread.clear()  # read now
    assert joining.take_in([shown], [])
    assert late in shown.keys
    elsewhere = second.runs[0].key
    assert not joining.take_in([shown], [elsewhere])
    assert not joining.take_in([shown], [elsewhere])  # grouped elsewhere: not again
    assert len(asked) == 4
    monitor.close()


def test_seed_grouping_finds_the_sweeps_configs(sweep: Path) -> None:
    monitor = loaded(sweep)
    groups = group_runs(monitor.summaries(), configs_of(monitor))
    assert len(groups) == 3
    assert [len(g.runs) for g in groups] == [5, 5, 5]
    names = sorted(g.name for g in groups)
    assert names == sorted((("train_params.batch_size", str(b)),) for b in SWEEP_BATCH_SIZES)
    assert sorted(g.label() for g in groups) == sorted(f"batch_size={b}" for b in (32, 64, 128))
    # Each group's runs share a batch size and differ in seed.
    for group in groups:
        ids = [run.id for run in group.runs]
        rows = query(
            sweep,
            f"SELECT DISTINCT config FROM experiment WHERE id IN ({','.join('?' * len(ids))})",
            tuple(ids),
        )
        assert len(rows) == 5
    monitor.close()


def test_chosen_keys_and_missing_values(sweep: Path) -> None:
    monitor = loaded(sweep)
    configs = configs_of(monitor)
    by_device = group_runs(monitor.summaries(), configs, ["cfg.torch.device"])
    assert sorted((g.label(), len(g.runs)) for g in by_device) == [
        ("device=cpu", 12),
        ("device=cuda:0", 3),
    ]
    missing = group_runs(monitor.summaries(), configs, ["no.such.key", "agent"])
    assert [(g.name, len(g.runs)) for g in missing] == [
        ((("no.such.key", "-"), ("agent", "NeuroFlow")), 15)
    ]
    assert varied_keys(configs.values()) == ["train_params.batch_size"]
    monitor.close()


def test_grouping_spans_databases(sweep: Path, tmp_path: Path) -> None:
    other = tmp_path / "b" / "metrics.db"
    other.parent.mkdir()
    shutil.copyfile(sweep, other)
    monitor = loaded(sweep, other)
    groups = group_runs(monitor.summaries(), configs_of(monitor))
    assert sorted(len(g.runs) for g in groups) == [10, 10, 10]
    assert all(len({run.db for run in g.runs}) == 2 for g in groups)
    monitor.close()


def test_an_unreadable_config_is_a_group_of_its_own(sweep: Path) -> None:
    monitor = loaded(sweep)
    configs = configs_of(monitor)
    first = monitor.summaries()[0]
    configs[first.key] = None
    groups = group_runs(monitor.summaries(), configs)
    alone = [g for g in groups if first in g.runs]
    assert len(groups) == 4
    assert len(alone[0].runs) == 1
    monitor.close()


def test_group_figures_match_the_file(sweep: Path) -> None:
    monitor = loaded(sweep)
    groups = sort_groups(group_runs(monitor.summaries(), configs_of(monitor)), NOW)
    for group in groups:
        ids = tuple(run.id for run in group.runs)
        marks = ",".join("?" * len(ids))
        finals = [
            row[0]
            for row in query(
                sweep,
                "SELECT reward_moving_avg FROM episode WHERE id IN (SELECT max(id) FROM episode"
                f" WHERE experiment_id IN ({marks}) GROUP BY experiment_id)",
                ids,
            )
        ]
        bests = [
            row[0]
            for row in query(
                sweep,
                f"SELECT max(reward) FROM episode WHERE experiment_id IN ({marks})"
                " GROUP BY experiment_id",
                ids,
            )
        ]
        counts = query(
            sweep,
            f"SELECT min(c), max(c) FROM (SELECT count(*) AS c FROM episode"
            f" WHERE experiment_id IN ({marks}) GROUP BY experiment_id)",
            ids,
        )[0]
        assert group.final().mean == pytest.approx(statistics.fmean(finals))
        assert group.final().std == pytest.approx(statistics.pstdev(finals))
        assert group.best().mean == pytest.approx(statistics.fmean(bests))
        assert group.episodes() == counts
    finals = [g.final().mean for g in groups]
    assert finals == sorted(finals, reverse=True)
    monitor.close()


def test_the_eta_is_the_running_runs(sweep: Path) -> None:
    monitor = loaded(sweep)
    groups = group_runs(monitor.summaries(), configs_of(monitor))
    with_running = [g for g in groups if g.running(NOW)]
    assert len(with_running) == 1
    group = with_running[0]
    running = [r for r in group.runs if r.status(NOW) is RunStatus.RUNNING]
    assert group.eta(NOW) == running[0].eta()
    # 80 episodes left at one a second.
    assert group.eta(NOW) == pytest.approx(timedelta(seconds=80), abs=timedelta(seconds=1))
    assert all(g.eta(NOW) is None for g in groups if g is not group)
    monitor.close()


@pytest.mark.parametrize("smoothing", [0.0, 0.6])
def test_group_curve_matches_sql_per_episode(sweep: Path, smoothing: float) -> None:
    """Exact: per episode number, the mean and count of the runs' rewards, as SQL has them."""
    monitor = loaded(sweep)
    groups = group_runs(monitor.summaries(), configs_of(monitor))
    for group in groups:
        readers = [SeriesReader(monitor.databases[r.db], r.id) for r in group.runs]
        series = read_series(readers)
        curve = group_curve(series, 1000, smoothing=smoothing)
        assert curve.exact
        ids = tuple(run.id for run in group.runs)
        rows = query(
            sweep,
            "SELECT episode_num, count(*), avg(reward) FROM episode WHERE experiment_id IN"
            f" ({','.join('?' * len(ids))}) GROUP BY episode_num ORDER BY episode_num",
            ids,
        )
        assert curve.x == [float(r[0]) for r in rows]
        assert curve.count == [r[1] for r in rows]
        if smoothing == 0:
            assert curve.mean == pytest.approx([r[2] for r in rows])
        assert sorted(curve.ends) == sorted(float(r.episodes) for r in group.runs)
        binned = group_curve(series, 50, smoothing=smoothing)
        assert not binned.exact
        assert len(binned) == 50
    monitor.close()


def test_group_curve_of_runs_with_bad_values(tmp_path: Path) -> None:
    """inf/NaN and text in the reward column are left out of the mean, not carried into it."""
    path = build_sweep_db(tmp_path / "metrics.db", NOW)
    conn = sqlite3.connect(path)
    conn.execute("UPDATE episode SET reward = 'oops' WHERE experiment_id = 1 AND episode_num = 5")
    conn.execute("UPDATE episode SET reward = 9e999 WHERE experiment_id = 2 AND episode_num = 5")
    conn.commit()
    conn.close()
    monitor = loaded(path)
    database = monitor.databases[path]
    series = read_series([SeriesReader(database, exp_id) for exp_id in (1, 2, 3)])
    curve = group_curve(series, 1000)
    at = curve.x.index(5.0)
    assert curve.count[at] == 1
    third = query(path, "SELECT reward FROM episode WHERE experiment_id = 3 AND episode_num = 5")
    assert curve.mean[at] == pytest.approx(third[0][0])
    assert all(math.isfinite(v) for v in curve.mean + curve.std)
    monitor.close()


def test_summaries_without_episodes_group_too(tmp_path: Path) -> None:
    summary = ExperimentSummary(db=tmp_path / "m.db", id=1, agent="A", env="E", created_at=None)
    groups = group_runs([summary], {summary.key: {"seed": 1, "lr": 0.1}})
    assert len(groups) == 1
    group = groups[0]
    assert group.label() == "A · E"
    assert math.isnan(group.final().mean)
    assert group.best().count == 0
    assert group.eta(NOW) is None
    assert group.to_json(NOW)["final_reward"] == {
        "mean": "nan",
        "std": "nan",
        "n": 0,
        "iqm": "nan",
        "ci95": None,
    }


def test_database_handles_are_closed(sweep: Path) -> None:
    database = MetricsDatabase(sweep)
    database.refresh()
    assert read_configs({sweep: database}, [(sweep, 1), (sweep, 999)])[(sweep, 999)] is None
    database.close()


# -- episodes to the target --------------------------------------------------------------------


def first_reaching(path: Path, exp_id: int, target: float) -> float:
    """The reference: the episode number of the run's first row (by id) from its 100th on
    whose moving average is a real number at or above the target; inf when none is."""
    rows = query(
        path,
        "SELECT episode_num FROM episode WHERE experiment_id = ? AND typeof(reward_moving_avg)"
        " IN ('real', 'integer') AND reward_moving_avg >= ? AND abs(reward_moving_avg) < 1e308"
        " AND episode_num >= 100 ORDER BY id LIMIT 1",
        (exp_id, target),
    )
    return float(rows[0][0]) if rows else math.inf


def test_episodes_to_target_are_the_first_rows_reaching_it(tmp_path: Path) -> None:
    path = build_sweep_db(tmp_path / "metrics.db", NOW)
    # Text and inf in a moving average never count as reaching it (text compares above any
    # number in SQLite).
    execute(
        path, "UPDATE episode SET reward_moving_avg = 'high' WHERE experiment_id = 1 AND id % 7 = 0"
    )
    execute(
        path, "UPDATE episode SET reward_moving_avg = 9e999 WHERE experiment_id = 2 AND id % 5 = 0"
    )
    monitor = loaded(path)
    summaries = monitor.summaries()
    reader = ReachedReader()
    for target in (300.0, 440.0, 1e9):
        found = reader.read(monitor.databases, [(s, target) for s in summaries])
        assert found == {s.key: first_reaching(path, s.id, target) for s in summaries}
    assert any(
        math.isfinite(v)
        for v in reader.read(monitor.databases, [(s, 440.0) for s in summaries]).values()
    )
    monitor.close()


def test_a_negative_target_is_not_reached_by_the_window_s_zero_padding(tmp_path: Path) -> None:
    """Acrobot's target is -100; velora's moving average starts near 0 (its window is padded
    with zeros) while the rewards are -500: the run reaches the target only where a full
    window's average does, at episode 150 here, never at episode 1."""
    averages = [-500.0 * n / 100 if n < 100 else -500.0 for n in range(1, 150)] + [-90.0] * 51
    path = run_file(
        tmp_path / "metrics.db",
        200,
        [f"2026-12-01 10:00:{n % 60:02d}" for n in range(200)],
        reward_moving_avg=averages,
    )
    monitor = loaded(path)
    (summary,) = monitor.summaries()
    found = ReachedReader().read(monitor.databases, [(summary, -100.0)])
    assert found == {summary.key: 150.0}
    monitor.close()


def test_episodes_to_target_read_new_rows_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run that has not reached its target is looked through again for its new rows only; one
    that has is not read again; a long run is read in statements of bounded id ranges."""
    path = build_sweep_db(tmp_path / "metrics.db", NOW)
    monkeypatch.setattr(group_reads, "REACHED_ID_SPAN", 50)
    monitor = loaded(path)
    summary = monitor.summary((path, 1))
    assert summary is not None
    reader = ReachedReader()
    assert reader.read(monitor.databases, [(summary, 1e6)]) == {summary.key: math.inf}
    seen = reader.known[summary.key].upto
    assert seen == summary.last_id
    add_episode(path, 1, episode_num=999, reward_moving_avg=2e6)
    monitor.refresh()
    summary = monitor.summary((path, 1))
    assert summary is not None
    asked: list[dict[str, Any]] = []
    database = monitor.databases[path]
    original = database.fetch_each

    def counting(reads: Any) -> Any:
        asked.extend(dict(params) for _, params in reads)
        return original(reads)

    monkeypatch.setattr(database, "fetch_each", counting)
    assert reader.read(monitor.databases, [(summary, 1e6)]) == {summary.key: 999.0}
    spans = [(p["after"], p["upto"]) for p in asked]
    assert spans[0][0] == seen  # from where the last read stopped
    assert spans[-1][1] == summary.last_id
    asked.clear()
    assert reader.read(monitor.databases, [(summary, 1e6)]) == {summary.key: 999.0}
    assert asked == []  # reached: never read again
    # A first read of a long run: bounded id ranges, one after the other.
    fresh = ReachedReader()
    other = monitor.summary((path, 2))
    assert other is not None
    fresh.read(monitor.databases, [(other, 1e6)])
    spans = [(p["after"], p["upto"]) for p in asked]
    assert all(upto - after <= 50 for after, upto in spans)
    assert spans[0][0] == (other.first_id or 1) - 1
    assert spans[-1][1] == other.last_id
    assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))
    monitor.close()


def test_a_far_file_s_runs_are_looked_through_together(tmp_path: Path) -> None:
    """A remote host is asked the runs' next statements together (FAR_READS at once): each
    run's episode of reaching its target as read one run at a time."""
    path = build_sweep_db(tmp_path / "metrics.db", NOW)
    batches: list[int] = []
    here, far = loaded(path), Monitor([path], files=FarFiles(batches))
    far.refresh()
    for database in far.databases.values():
        add_up(database)
    try:
        for target in (300.0, 440.0, 1e9):
            runs = [(s, target) for s in here.summaries()]
            alone = {
                s.key: ReachedReader().read(here.databases, [(s, target)])[s.key]
                for s in here.summaries()
            }
            together = ReachedReader().read(far.databases, [(s, target) for s in far.summaries()])
            assert ReachedReader().read(here.databases, runs) == alone
            assert together == alone
        assert len(here.summaries()) > 1
        assert max(batches) == min(FAR_READS, len(here.summaries()))
    finally:
        here.close()
        far.close()


def test_groups_carry_their_runs_episodes_to_target(tmp_path: Path) -> None:
    path = build_sweep_db(tmp_path / "metrics.db", NOW)
    monitor = loaded(path)
    summaries = monitor.summaries()
    groups = group_runs(summaries, configs_of(monitor))
    targets = {s.key: 440.0 for s in summaries}
    reached = ReachedReader().read(monitor.databases, [(s, 440.0) for s in summaries])
    for group in groups:
        group.set_reached(reached, targets)
        assert group.target == 440.0
        values = [first_reaching(path, run.id, 440.0) for run in group.runs]
        estimate = group.to_target()
        assert estimate is not None
        assert estimate.count == len(values)
        assert group.reached_count() == sum(1 for v in values if math.isfinite(v))
        data = group.to_json(NOW)["episodes_to_target"]
        assert data["reached"] == group.reached_count()
        assert data["target"] == 440.0
    lonely = group_runs(summaries, configs_of(monitor))[0]
    assert lonely.to_target() is None  # no target known: no figure
    assert lonely.to_json(NOW)["episodes_to_target"] is None
    monitor.close()
