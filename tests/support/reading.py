"""Reading a database in the tests, through the data layer or plain sqlite3."""

from __future__ import annotations

import math
import os
import shutil
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.support.databases import SAMPLE_DB
from velora_tui.data.connection import change_counter, connect_readonly
from velora_tui.data.database import MetricsDatabase
from velora_tui.data.files import FileSystem
from velora_tui.data.records import ExperimentSummary, SourceState
from velora_tui.data.series import Series, SeriesReader, thin

if TYPE_CHECKING:
    pass


def load_series(database: MetricsDatabase, exp_id: int, buckets: int = 200) -> Series:
    """An experiment's series in one go: exact up to `2 * buckets` rows, else `buckets` points."""
    series = SeriesReader(database, exp_id, 2 * buckets).read()
    return series if series.exact else thin(series, buckets)


def fresh_series(path: Path, exp_id: int, points: int) -> Series:
    """An experiment's series as a reader that opens the file now reads it whole."""
    database = MetricsDatabase(path)
    try:
        database.refresh()
        return SeriesReader(database, exp_id, points).read()
    finally:
        database.close()


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


class _AtOnce:
    """A connection that takes several statements at once, as a remote host's does (each run
    here in turn), counting how many came together."""

    def __init__(self, conn: sqlite3.Connection, batches: list[int]) -> None:
        self.conn, self.batches = conn, batches

    def execute(self, sql: str, parameters: Any = (), /) -> Any:
        return self.conn.execute(sql, parameters)

    def execute_all(self, requests: Any) -> list[list[Any]]:
        self.batches.append(len(requests))
        return [self.conn.execute(sql, params).fetchall() for sql, params in requests]

    def close(self) -> None:
        self.conn.close()


class FarFiles(FileSystem):
    """Files read as across a link (FileSystem.far), through connections that take several
    statements at once (data.files.AsksAtOnce): `batches` gets the size of each such ask."""

    def __init__(self, batches: list[int]) -> None:
        self.batches = batches

    def far(self, path: Path) -> bool:
        return True

    def connect(self, path: Path, busy_timeout: float) -> Any:
        return _AtOnce(connect_readonly(path, busy_timeout), self.batches)
