"""A floor for the app's start-up: the least a Textual app showing experiment rows can cost.

`python -m bench.floor_app` shows a DataTable of a few fixed rows; with a database,
`python -m bench.floor_app DB` shows one row per experiment from the plainest summary SQL
(`GROUP BY experiment_id` over every episode, and the experiment rows for their names), read in
a thread that starts with the app, as velora-tui's first read does. Nothing of velora_tui is
imported. bench/startup.py starts it on a pseudo-terminal exactly as it starts the app.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import threading
from concurrent.futures import Future
from pathlib import Path

from textual.app import App, ComposeResult
from textual.widgets import DataTable, Footer, Header

Row = tuple[object, ...]
COLUMNS = ("id", "agent", "env", "episodes", "best reward")
FIXED_ROWS: list[Row] = [
    (1, "NeuroFlow", "CartPole-v1", 10_000, 500.0),
    (2, "NeuroFlowCT", "InvertedPendulum-v5", 10_000, 1000.0),
    (3, "NeuroFlowCT", "Pendulum-v1", 10_000, -150.0),
    (4, "NeuroFlow", "LunarLander-v3", 10_000, 250.0),
]
SUMMARY_SQL = "SELECT experiment_id, count(*), max(reward) FROM episode GROUP BY experiment_id"
NAMES_SQL = "SELECT id, agent, env FROM experiment"


def summary_rows(db: Path) -> list[Row]:
    conn = sqlite3.connect(db.resolve().as_uri() + "?mode=ro", uri=True, isolation_level=None)
    try:
        counts = conn.execute(SUMMARY_SQL).fetchall()
        names = {exp_id: (agent, env) for exp_id, agent, env in conn.execute(NAMES_SQL)}
    finally:
        conn.close()
    return [(exp_id, *names.get(exp_id, ("?", "?")), n, best) for exp_id, n, best in counts]


class FloorApp(App[None]):
    TITLE = "floor"

    def __init__(self, db: Path | None) -> None:
        super().__init__()
        self.rows: Future[list[Row]] = Future()
        if db is None:
            self.rows.set_result(FIXED_ROWS)
        else:
            threading.Thread(target=self._read, args=(db,), daemon=True).start()

    def _read(self, db: Path) -> None:
        try:
            self.rows.set_result(summary_rows(db))
        except BaseException as exc:
            self.rows.set_exception(exc)

    def compose(self) -> ComposeResult:
        yield Header()
        yield DataTable()
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns(*COLUMNS)
        self.run_worker(self._show_rows())

    async def _show_rows(self) -> None:
        rows = await asyncio.wrap_future(self.rows)
        self.query_one(DataTable).add_rows(rows)


if __name__ == "__main__":
    FloorApp(Path(sys.argv[1]) if len(sys.argv) > 1 else None).run()
