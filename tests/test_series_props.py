"""Property tests for SQL downsampling: extremes kept, point budget respected, order kept."""

from __future__ import annotations

import math
import sqlite3
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import velora_ddl
from velora_tui.data.database import MetricsDatabase
from velora_tui.data.series import load_series

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
    for num, value in enumerate(values, start=1):
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
            "VALUES (1, ?, ?, 10, 0, 0, 0, 0, 0, '2026-11-24 12:00:01')",
            (num, value),
        )
    conn.execute("COMMIT")
    conn.close()
    return db


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
    from velora_tui.data.series import Band, Series, thin

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
