"""Property tests for SQL downsampling: extremes kept, point budget respected, order kept."""

from __future__ import annotations

import itertools
import math
import sqlite3
import tempfile
from pathlib import Path
from typing import Any
from unittest.mock import patch

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.databases import velora_ddl
from tests.support.reading import FarFiles, fresh_series, load_series
from velora_tui.data import series as series_module
from velora_tui.data import statements
from velora_tui.data.database import MetricsDatabase
from velora_tui.data.records import EPISODE_METRICS
from velora_tui.data.series import Series, SeriesReader, buckets_of

rewards = st.lists(
    st.one_of(
        st.floats(min_value=-1e9, max_value=1e9, allow_nan=False),
        st.sampled_from([math.inf, -math.inf, "text"]),
    ),
    min_size=1,
    max_size=600,
)


def write(folder: Path, values: list[float | str], other_every: int) -> Path:
    db = folder / "metrics.db"
    conn = sqlite3.connect(db, isolation_level=None)
    conn.executescript(velora_ddl("0.2.0"))
    conn.execute("BEGIN")
    for _exp in (1, 2):
        conn.execute(
            "INSERT INTO experiment (agent, env, config, created_at) VALUES ('a', 'e', '{}', "
            "'2026-11-24 12:00:00')"
        )
    conn.execute("COMMIT")
    conn.close()
    append(db, values, 1, other_every)
    return db


def append(db: Path, values: list[float | str], first_num: int, other_every: int) -> None:
    """Episodes of experiment 1 numbered from `first_num`, in one commit; every
    `other_every`-th one preceded by an episode of experiment 2."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("BEGIN")
    for num, value in enumerate(values, start=first_num):
        if other_every and num % other_every == 0:  # another run writing at the same time
            conn.execute(
                "INSERT INTO episode (experiment_id, episode_num, reward, length, "
                "reward_moving_avg, reward_moving_std, actor_loss, critic_loss, entropy_loss, "
                "created_at) VALUES (2, ?, 1e6, 1, 0, 0, 0, 0, 0, '2026-11-24 12:00:01')",
                (num,),
            )
        conn.execute(
            "INSERT INTO episode (experiment_id, episode_num, reward, length, reward_moving_avg,"
            " reward_moving_std, actor_loss, critic_loss, entropy_loss, created_at) "
            "VALUES (1, ?, ?, ?, 0, 0, 0, 0, 0, ?)",
            (num, value, num % 7 + 1, f"2026-11-24 12:{num // 60 % 60:02}:{num % 60:02}"),
        )
    conn.execute("COMMIT")
    conn.close()


@settings(max_examples=40, deadline=None)
@given(rewards, st.integers(min_value=1, max_value=120), st.integers(min_value=0, max_value=5))
def test_downsampling_keeps_extremes_order_and_budget(
    values: list[float | str], buckets: int, other_every: int
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        database = MetricsDatabase(write(Path(folder), values, other_every))
        database.refresh()
        series = load_series(database, 1, buckets)
        database.close()
    assert series.rows == len(values)
    if len(values) > 2 * buckets:
        assert not series.exact
        assert len(series) <= buckets
    else:
        assert len(series) == len(values)
    assert series.episode == sorted(series.episode)
    finite = [v for v in values if isinstance(v, float) and math.isfinite(v)]
    band = series.bands["reward"]
    plotted = [v for v in band.low + band.high + band.mean if math.isfinite(v)]
    if finite:
        assert min(finite) in plotted
        assert max(finite) in plotted
        assert all(min(finite) <= v <= max(finite) for v in plotted)
    else:
        assert not plotted


@given(
    st.lists(st.floats(min_value=-1e6, max_value=1e6), min_size=1, max_size=400),
    st.integers(min_value=1, max_value=100),
)
def test_thinning_keeps_extremes_and_budget(values: list[float], points: int) -> None:
    from velora_tui.data.series import Band, thin

    series = Series(episode=[float(i) for i in range(len(values))], rows=len(values))
    series.steps = list(series.episode)
    series.seconds = list(series.episode)
    series.bands["reward"] = Band(mean=list(values), low=list(values), high=list(values))
    for metric in series.bands:
        if metric != "reward":
            series.bands[metric] = Band(
                mean=[math.nan] * len(values),
                low=[math.nan] * len(values),
                high=[math.nan] * len(values),
            )
    out = thin(series, points)
    assert len(out) <= max(points, 1) or len(values) <= points
    assert out.episode == sorted(out.episode)
    band = out.bands["reward"]
    assert min(values) == min(band.low)
    assert max(values) == max(band.high)


@settings(max_examples=40, deadline=None)
@given(
    rewards,
    st.lists(st.integers(min_value=1, max_value=200), max_size=6),
    st.integers(min_value=1, max_value=60),
    st.integers(min_value=1, max_value=700),
    st.integers(min_value=0, max_value=5),
    st.booleans(),
)
def test_reading_a_few_rows_at_a_time_gives_the_same_series(
    values: list[float | str],
    batches: list[int],
    points: int,
    chunk: int,
    other_every: int,
    far: bool,
) -> None:
    """A reader kept up to date as rows arrive (in batches, read in chunks of ids; `far`: of a
    remote host, several chunks asked at once) ends with the same points as one that reads
    everything at the end."""
    cuts = sorted({min(len(values), c) for c in batches} | {len(values)})
    with tempfile.TemporaryDirectory() as folder, patch.object(series_module, "CHUNK_IDS", chunk):
        db = write(Path(folder), values[: cuts[0]], other_every)
        database = MetricsDatabase(db, files=FarFiles([]) if far else None)
        database.refresh()
        live = SeriesReader(database, 1, points)
        live.read()
        for start, end in itertools.pairwise(cuts):
            append(db, values[start:end], start + 1, other_every)
            database.refresh()
            live.read()
        growing = live.read()
        once = fresh_series(db, 1, points)
        database.close()
    assert len(once) <= points
    assert growing.rows == once.rows == len(values)
    assert growing.exact == once.exact == (len(values) <= points)
    assert growing.episode == once.episode
    assert growing.steps == once.steps
    assert growing.seconds == once.seconds
    for metric in EPISODE_METRICS:
        a, b = growing.bands[metric], once.bands[metric]
        assert same(a.low, b.low)
        assert same(a.high, b.high)
        assert all(
            math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-6) or (math.isnan(x) and math.isnan(y))
            for x, y in zip(a.mean, b.mean, strict=True)
        )


def same(a: list[float], b: list[float]) -> bool:
    return len(a) == len(b) and all(
        x == y or (math.isnan(x) and math.isnan(y)) for x, y in zip(a, b, strict=True)
    )


def test_buckets_that_merge_while_chunks_asked_at_once_come_in(tmp_path: Path) -> None:
    """A far host's chunks of ids asked at once, while the run outgrows its buckets: those that
    came of narrower buckets than the ones now kept are read again, never put in as they are."""
    values: list[float | str] = [float(n % 13) for n in range(1, 201)]
    db = write(tmp_path, values[:4], 0)
    batches: list[int] = []
    with patch.object(series_module, "CHUNK_IDS", 3):
        far = MetricsDatabase(db, files=FarFiles(batches))
        far.refresh()
        live = SeriesReader(far, 1, 4)
        live.read()
        append(db, values[4:], 5, 0)
        far.refresh()
        growing = live.read()
        once = fresh_series(db, 1, 4)
        far.close()
    assert max(batches) > 1  # asked at once...
    assert live.width > 1  # ...while the buckets merged
    assert growing.rows == once.rows == 200
    assert growing.episode == once.episode
    for metric in EPISODE_METRICS:
        assert same(growing.bands[metric].high, once.bands[metric].high)
        assert same(growing.bands[metric].low, once.bands[metric].low)


# -- rows the change feed read, folded into the buckets ----------------------------------------

# Any value a number column may hold: numbers, +-inf, NaN (stored as NULL), NULL, text (numeric
# text becomes a number as it is stored, as SQLite's affinity makes it) and blobs.
stored_values = st.one_of(
    st.floats(min_value=-1e12, max_value=1e12, allow_nan=False),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.sampled_from([math.inf, -math.inf, math.nan, None, "5", " 7 ", "1e999", "", "x"]),
    st.text(max_size=4),
    st.binary(max_size=3),
)
times = st.one_of(
    st.builds(
        "2026-11-24 {:02}:{:02}:{:02}.{:06}".format,
        st.integers(0, 23),
        st.integers(0, 59),
        st.integers(0, 59),
        st.integers(0, 999_999),
    ),
    stored_values,
)
stored_rows = st.lists(
    st.tuples(
        st.one_of(st.integers(min_value=0, max_value=10_000), stored_values),  # episode_num
        st.lists(stored_values, min_size=7, max_size=7),  # EPISODE_METRICS
        times,
    ),
    min_size=1,
    max_size=300,
)
StoredRow = tuple[Any, list[Any], Any]


def any_values_db(folder: Path, schema: str) -> Path:
    """Velora's tables without their NOT NULL (so that NULL and NaN can be stored too), and two
    experiments."""
    db = folder / "metrics.db"
    conn = sqlite3.connect(db, isolation_level=None)
    conn.executescript(velora_ddl(schema).replace(" NOT NULL", ""))
    for _exp in (1, 2):
        conn.execute(
            "INSERT INTO experiment (agent, env, config, created_at) VALUES ('a', 'e', '{}', "
            "'2026-11-24 12:00:00')"
        )
    conn.close()
    return db


def append_stored(db: Path, rows: list[StoredRow], other_every: int, schema: str) -> None:
    """`rows` to experiment 1 in one commit, every `other_every`-th after one of experiment 2."""
    metrics = EPISODE_METRICS if schema == "0.2.0" else EPISODE_METRICS[:-1]
    columns = ", ".join(("experiment_id", "episode_num", *metrics, "created_at"))
    marks = ", ".join("?" * (len(metrics) + 3))
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("BEGIN")
    for index, (number, values, stamp) in enumerate(rows):
        if other_every and index % other_every == 0:
            other = (2, index, *[1.0] * len(metrics), "2026-11-24 12:00:01")
            conn.execute(f"INSERT INTO episode ({columns}) VALUES ({marks})", other)
        row = (1, number, *values[: len(metrics)], stamp)
        conn.execute(f"INSERT INTO episode ({columns}) VALUES ({marks})", row)
    conn.execute("COMMIT")
    conn.close()


def close(a: list[float], b: list[float]) -> bool:
    return len(a) == len(b) and all(
        math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-6) or (math.isnan(x) and math.isnan(y))
        for x, y in zip(a, b, strict=True)
    )


@settings(max_examples=40, deadline=None)
@given(
    stored_rows,
    st.lists(st.integers(min_value=0, max_value=300), max_size=6),
    st.lists(st.booleans(), min_size=6, max_size=6),
    st.integers(min_value=1, max_value=60),
    st.integers(min_value=1, max_value=700),
    st.integers(min_value=0, max_value=4),
    st.booleans(),
    st.sampled_from(["0.2.0", "0.1.1"]),
)
def test_rows_the_feed_read_folded_in_give_what_a_fresh_read_gives(
    rows: list[StoredRow],
    batches: list[int],
    read_after: list[bool],
    points: int,
    chunk: int,
    other_every: int,
    far: bool,
    schema: str,
) -> None:
    """A reader kept up to date by folding in the rows each refresh read (never reading them
    from the file again) ends with the same points as a fresh one that reads them all: text,
    blobs, NULL and +-inf in number columns, text in episode numbers and times, buckets that
    merge as the run grows, other experiments' rows between, a far host's database."""
    cuts = sorted({min(len(rows), c) for c in batches} | {len(rows)})
    with tempfile.TemporaryDirectory() as folder, patch.object(series_module, "CHUNK_IDS", chunk):
        db = any_values_db(Path(folder), schema)
        append_stored(db, rows[: cuts[0]], other_every, schema)
        database = MetricsDatabase(db, files=FarFiles([]) if far else None)
        database.refresh()
        live = SeriesReader(database, 1, points)
        live.read()
        with patch.object(live, "_read_next", wraps=live._read_next) as from_file:
            for (start, end), read in zip(itertools.pairwise(cuts), read_after, strict=False):
                append_stored(db, rows[start:end], other_every, schema)
                database.refresh()
                if read:
                    live.read()
            growing = live.read()
        fresh = fresh_series(db, 1, points)
        database.close()
    assert from_file.call_count == 0  # every new row folded in, none read again
    assert growing.rows == fresh.rows == len(rows)
    assert growing.exact == fresh.exact
    assert growing.complete
    assert fresh.complete
    assert same(growing.episode, fresh.episode)
    assert same(growing.seconds, fresh.seconds)
    assert close(growing.steps, fresh.steps)  # sums: added in another order, to the last bit
    for metric in EPISODE_METRICS:
        a, b = growing.bands[metric], fresh.bands[metric]
        assert same(a.low, b.low)
        assert same(a.high, b.high)
        assert close(a.mean, b.mean)


@settings(max_examples=60, deadline=None)
@given(
    stored_rows,
    st.integers(min_value=0, max_value=4),
    st.integers(min_value=1, max_value=9),
    st.sampled_from(["0.2.0", "0.1.1"]),
)
def test_buckets_of_rows_are_what_sqlite_answers(
    rows: list[StoredRow], other_every: int, width: int, schema: str
) -> None:
    """series.buckets_of, from the rows as the change feed reads them, answers what the
    buckets' statement answers for the same rows, value for value (the totals too: summed
    in id order as SQLite sums them)."""
    with tempfile.TemporaryDirectory() as folder:
        db = any_values_db(Path(folder), schema)
        append_stored(db, rows, other_every, schema)
        database = MetricsDatabase(db)
        database.refresh()
        schema_read = database.schema
        assert schema_read is not None
        low, high = 0, 10**9
        read = database.fetch_each(
            [(statements.new_episodes(schema_read), {"after": low, "limit": 10**6})]
        )
        answer = database.fetch_each(
            [
                (
                    statements.series_buckets(schema_read),
                    {"exp_id": 1, "base": 1, "width": width, "low": low, "high": high},
                )
            ]
        )
        database.close()
    assert read is not None
    assert answer is not None
    folded = buckets_of(read[0], 1, low, high, 1, width)
    assert [list(map(comparable, row)) for row in folded] == [
        list(map(comparable, row)) for row in answer[0]
    ]


def comparable(value: Any) -> Any:
    """A value with its storage class (1 and 1.0 differ in SQLite's answer too)."""
    return (type(value).__name__, value)
