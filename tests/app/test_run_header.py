"""The experiment's header says where a run is: its progress bar follows the episode number the
run reached, not its row count (issue 24, item 6)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from textual.widgets import ProgressBar

from tests.support.app import open_experiment, still
from tests.support.databases import run_file, spaced

pytestmark = pytest.mark.ui


async def test_a_run_numbered_again_from_one_is_not_shown_complete(tmp_path: Path) -> None:
    """Episodes 1-6, then 1-5 again, 10 planned: 11 rows, at episode 5 of 10."""
    numbers = [*range(1, 7), *range(1, 6)]
    path = run_file(tmp_path / "metrics.db", 10, spaced(datetime.now(), [1.0] * 10), numbers)
    app = still(path)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_experiment(app, pilot)
        bar = screen.query_one("#exp-progress", ProgressBar)
        assert (bar.progress, bar.total) == (5, 10)
