"""Snapshots of the grouped list, a group's chart (its three bands), compared groups and the sweep
table, on the generated sweep (3 configs x 5 seeds, ragged, one run still running), at 80x24
and 120x40. Deterministic as tests/app/test_snapshots.py: a fixed clock, no watcher, the file in
the test's own folder (the working directory). Update with `make snapshots`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.app import NOW
from tests.support.databases import build_sweep_db
from tests.support.snapshots import SnapCompare, keys_then_settle
from velora_tui.tui.app import Settings, VeloraApp, make_app

pytestmark = pytest.mark.ui


def sweep_app(folder: Path) -> VeloraApp:
    build_sweep_db(folder / "metrics.db", NOW)
    return make_app([folder / "metrics.db"], Settings(live=False, clock=lambda: NOW))


SCREENS = (
    ("grouped", ("g",)),
    ("unfolded", ("g", "right")),
    ("group-chart", ("g", "enter")),
    ("group-chart-minmax", ("g", "enter", "b")),
    ("group-chart-ci", ("g", "enter", "b", "b")),
    ("groups-compared", ("g", "space", "space", "space", "c")),
    ("sweep", ("g", "w")),
)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
@pytest.mark.parametrize(("name", "keys"), SCREENS, ids=[name for name, _ in SCREENS])
def test_group_screen(
    snap_compare: SnapCompare,
    name: str,
    keys: tuple[str, ...],
    size: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert snap_compare(sweep_app(tmp_path), terminal_size=size, run_before=keys_then_settle(*keys))
