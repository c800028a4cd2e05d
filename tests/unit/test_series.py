"""An experiment's chart series, downsampled in SQL, against real files.

Every test that opens a file checks that its folder is byte-for-byte unchanged afterwards
(the monitor never changes the file, never creates one).
"""

from __future__ import annotations

import gc
import itertools
import math
from pathlib import Path
from unittest.mock import patch

import pytest

from tests.support.databases import MakeDb, add_episode, execute
from tests.support.folders import assert_unchanged
from tests.support.reading import load_series, opened, query
from velora_tui.data import database as database_module
from velora_tui.data import series as series_module
from velora_tui.data.records import EPISODE_METRICS
from velora_tui.data.series import SeriesReader, sampled_series

TIMEOUT = 30.0


def test_series_exact_when_small(sample_db: Path) -> None:
    with assert_unchanged(sample_db.parent):
        db = opened(sample_db)
        db.refresh()
        series = load_series(db, 1)
        assert series.exact
        assert len(series) == series.rows == 120
        assert series.episode == [float(n) for n in range(1, 121)]
        rewards = [
            r
            for (r,) in query(
                sample_db, "SELECT reward FROM episode WHERE experiment_id = 1 ORDER BY id"
            )
        ]
        lengths = [
            n
            for (n,) in query(
                sample_db, "SELECT length FROM episode WHERE experiment_id = 1 ORDER BY id"
            )
        ]
        band = series.bands["reward"]
        assert band.mean == band.low == band.high == rewards
        assert series.steps[-1] == sum(lengths)
        assert series.seconds[0] == 0.0
        assert series.seconds == sorted(series.seconds)
        assert set(series.bands) == set(EPISODE_METRICS)
        assert len(load_series(db, 1, buckets=60)) == 120  # 2 * buckets rows: still exact
        assert len(load_series(db, 99)) == 0
        db.close()


@pytest.mark.parametrize("buckets", [10, 59])
def test_series_bucketed_keeps_extremes(sample_db: Path, buckets: int) -> None:
    with assert_unchanged(sample_db.parent):
        db = opened(sample_db)
        db.refresh()
        series = load_series(db, 1, buckets=buckets)
        assert not series.exact
        assert 0 < len(series) <= buckets
        assert series.rows == 120
        [(low, high)] = query(
            sample_db, "SELECT min(reward), max(reward) FROM episode WHERE experiment_id = 1"
        )
        band = series.bands["reward"]
        assert min(band.low) == low
        assert max(band.high) == high
        assert all(
            lo <= mean <= hi for lo, mean, hi in zip(band.low, band.mean, band.high, strict=True)
        )
        assert series.episode == sorted(series.episode)
        db.close()


def test_series_large_with_spikes_and_junk(tmp_path: Path, make_db: MakeDb) -> None:
    path = make_db(tmp_path / "metrics.db", [3000, 10])
    execute(path, "UPDATE episode SET reward = 1e6 WHERE id = 1234")
    execute(path, "UPDATE episode SET reward = -1e6 WHERE id = 2345")
    execute(path, "UPDATE episode SET reward = ? WHERE id = 77", (math.inf,))
    execute(path, "UPDATE episode SET reward = 'junk', actor_loss = 'junk' WHERE id = 78")
    with assert_unchanged(tmp_path):
        db = opened(path)
        db.refresh()
        series = load_series(db, 1, buckets=50)
        assert not series.exact
        assert len(series) <= 50
        assert series.rows == 3000
        band = series.bands["reward"]
        assert max(band.high) == 1e6
        assert min(band.low) == -1e6
        for metric in EPISODE_METRICS:
            values = series.bands[metric]
            assert not any(math.isinf(v) for v in values.mean + values.low + values.high)
            assert values.has_data()
        assert len(load_series(db, 2, buckets=50)) == 10  # the other run is small: exact
        db.close()


def test_series_of_unreadable_source_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "metrics.db"
    path.write_text("nope")
    with assert_unchanged(tmp_path):
        db = opened(path)
        db.refresh()
        assert len(load_series(db, 1)) == 0
        db.close()


def test_a_read_with_a_budget_ends_as_one_read(
    tmp_path: Path, make_db: MakeDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Read a part at a time (as the charts read a long run), the series comes out the same
    as read at once, and says when it is complete."""
    monkeypatch.setattr(series_module, "CHUNK_IDS", 25)
    path = make_db(tmp_path / "metrics.db", [300, 40])
    db = opened(path)
    try:
        db.refresh()
        parts = SeriesReader(db, 1, max_points=64)
        read = parts.read(budget=0.0)
        assert not read.complete
        assert 0 < read.rows < 300
        count = 1
        while not read.complete:
            read = parts.read(budget=0.0)
            count += 1
        assert count == 12  # 300 rows, 25 ids a read
        whole = SeriesReader(db, 1, max_points=64).read()
        assert whole.complete
        assert (read.episode, read.rows, read.bands) == (whole.episode, whole.rows, whole.bands)
    finally:
        db.close()


def test_sample_spreads_over_the_run(tmp_path: Path, make_db: MakeDb) -> None:
    path = make_db(tmp_path / "metrics.db", [200, 30])
    db = opened(path)
    try:
        db.refresh()
        rows = db.sample(1, 10)
        summary = db.summaries[1]
        assert len(rows) == 10
        assert rows[0].id == summary.first_id
        assert rows[-1].id == summary.last_id
        assert all(a.id < b.id for a, b in itertools.pairwise(rows))
        assert {row.experiment_id for row in rows} == {1}
        every = db.sample(2, 100)  # fewer rows than points: each row once
        assert [row.episode_num for row in every] == list(range(1, 31))
        preview = sampled_series(rows)
        assert not preview.complete
        assert preview.episode == [float(row.episode_num or 0) for row in rows]
        assert preview.steps[-1] > sum(row.length or 0 for row in rows)  # scaled to the run
        assert db.sample(99, 10) == []
    finally:
        db.close()


def test_new_rows_are_kept_only_for_a_reader_and_only_so_many(
    tmp_path: Path, make_db: MakeDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rows a refresh reads are kept for a chart's reader (folded in, not read again) only
    while one lives, and at most KEEP_ROWS of them: a reader further behind reads the rest
    from the file, and ends with the series a fresh read gives."""
    monkeypatch.setattr(database_module, "KEEP_ROWS", 10)
    path = make_db(tmp_path / "metrics.db", [20])
    db = opened(path)
    try:
        db.refresh()
        add_episode(path, 1, episode_num=21)
        db.refresh()
        assert db.new_rows() == ()  # no reader: nothing kept
        reader = SeriesReader(db, 1, max_points=8)
        reader.read()
        for number in range(22, 26):  # 4 rows, each its own refresh: all kept
            add_episode(path, 1, episode_num=number, reward=float(number))
            db.refresh()
        assert sum(len(batch.rows) for batch in db.new_rows()) == 4
        with patch.object(reader, "_read_next", wraps=reader._read_next) as from_file:
            assert reader.read().rows == 25
        assert from_file.call_count == 0
        for number in range(26, 46):  # 20 rows: only the newest 10 kept
            add_episode(path, 1, episode_num=number, reward=-float(number))
            db.refresh()
        assert [batch.last for batch in db.new_rows()] == list(range(36, 46))
        with patch.object(reader, "_read_next", wraps=reader._read_next) as from_file:
            behind = reader.read()
        assert from_file.call_count > 0  # rows 26-35 from the file, the rest folded in
        fresh = SeriesReader(db, 1, max_points=8).read()
        assert (behind.rows, behind.episode, behind.steps) == (45, fresh.episode, fresh.steps)
        for metric in EPISODE_METRICS:
            mine, theirs = behind.bands[metric], fresh.bands[metric]
            assert (mine.low, mine.high) == (theirs.low, theirs.high)
            # Totals added in another order may differ in their last bit, as between two reads
            # of the file in other chunks.
            assert mine.mean == pytest.approx(theirs.mean, rel=1e-12)
        del reader, fresh, from_file  # (the mock holds the reader)
        gc.collect()
        add_episode(path, 1, episode_num=46)
        db.refresh()
        assert db.new_rows() == ()  # its reader gone: nothing kept
    finally:
        db.close()


def test_a_run_among_others_is_read_in_spans_of_its_own_rows(tmp_path: Path) -> None:
    """20 runs written at once (rows interleaved): a run's series is read in spans that hold
    about CHUNK_IDS of its rows (not CHUNK_IDS ids: 1/20 of that), never more than MAX_SPAN
    rows a read, and comes out as it does read 1,000 ids at a time."""
    from tests.support.databases import build_big_velora_db

    path = tmp_path / "metrics.db"
    build_big_velora_db(path, 20, 2_000, groups=[20])
    database = opened(path)
    database.refresh()
    exp_id = sorted(database.summaries)[3]
    reads: list[int] = []
    real = SeriesReader._read_next

    def counted(reader: SeriesReader, last: int) -> bool:
        before = reader.mark
        done = real(reader, last)
        reads.append(reader.mark - before)
        return done

    with patch.object(SeriesReader, "_read_next", counted):
        spread = SeriesReader(database, exp_id, 500).read()
    rows = database.summaries[exp_id].episodes
    ids = (database.summaries[exp_id].last_id or 0) - (database.summaries[exp_id].first_id or 0)
    assert ids > 10 * rows  # the run's rows are spread among the others'
    assert len(reads) < ids / series_module.CHUNK_IDS / 4
    assert max(reads) <= series_module.MAX_SPAN
    with patch.object(series_module, "MAX_SPAN", series_module.CHUNK_IDS):
        thousand = SeriesReader(database, exp_id, 500).read()
    assert spread.rows == thousand.rows == rows
    assert spread.episode == thousand.episode
    for metric, band in spread.bands.items():
        other = thousand.bands[metric]
        assert (band.low, band.high) == (other.low, other.high)
        # Totals added in another order across reads: the mean alike to the last bits.
        assert band.mean == pytest.approx(other.mean, rel=1e-9, nan_ok=True)
    database.close()
