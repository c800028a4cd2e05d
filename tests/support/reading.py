"""Reading a database in the tests, through the data layer or plain sqlite3."""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.support.databases import SAMPLE_DB
from velora_tui.data.connection import change_counter, connect_readonly
from velora_tui.data.database import MetricsDatabase
from velora_tui.data.records import ExperimentSummary, SourceState
from velora_tui.data.series import Series, SeriesReader, thin

if TYPE_CHECKING:
    pass


def load_series(database: MetricsDatabase, exp_id: int, buckets: int = 200) -> Series:
    """An experiment's series in one go: exact up to `2 * buckets` rows, else `buckets` points."""
    series = SeriesReader(database, exp_id, 2 * buckets).read()
    return series if series.exact else thin(series, buckets)


def query(path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Ground truth, read with the same read-only rules as the reader."""
    conn = connect_readonly(path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def state(db: MetricsDatabase) -> SourceState:
    """The source's state now (a call, so that type checkers do not narrow it)."""
    return db.status.state


def opened(path: Path, *, replay: bool = False, busy_timeout: float = 1.0) -> MetricsDatabase:
    return MetricsDatabase(path, busy_timeout=busy_timeout, replay=replay)


def facts(summary: ExperimentSummary) -> dict[str, Any]:
    """A summary's comparable fields, NaN made comparable."""

    def norm(value: Any) -> Any:
        return "nan" if isinstance(value, float) and math.isnan(value) else value

    names = [
        "id",
        "agent",
        "env",
        "created_at",
        "n_episodes",
        "episodes",
        "first_id",
        "last_id",
        "last_episode_num",
        "last_reward",
        "best_reward",
        "reward_moving_avg",
        "first_activity",
        "last_activity",
        "nonfinite",
    ]
    return {name: norm(getattr(summary, name)) for name in names}


def copy_sample(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "metrics.db"
    shutil.copyfile(SAMPLE_DB, target)
    return target


def add_up(db: MetricsDatabase) -> None:
    """Finish the scan of a first load (what the app does after its first screen)."""
    while db.scan_step() is not None:
        pass
    assert not db.scanning


INSERT_EPISODE = (
    "INSERT INTO episode (experiment_id, episode_num, reward, length, reward_moving_avg,"
    " reward_moving_std, actor_loss, critic_loss, entropy_loss, created_at)"
    " VALUES (1, 500, 2.0, 2, 1.0, 0.0, 0.0, 0.0, 0.0, '2026-11-24 10:00:00')"
)


def header_counter(path: Path) -> int | None:
    fd = os.open(path, os.O_RDONLY)
    try:
        return change_counter(fd)
    finally:
        os.close(fd)
