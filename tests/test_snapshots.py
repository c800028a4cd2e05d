"""Snapshots of every screen on the sample database, at 80x24 and 120x40.

Deterministic: a fixed clock, no watcher or heartbeat, and the sample copied into the test's
own folder, which is made the working directory: paths on screen are shown relative to it
(`metrics.db`). Update with `make snapshots` after an intended change.
"""

from __future__ import annotations

import shutil
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from tests.support import SAMPLE_DB, paced_show_due
from velora_tui.tui.app import Settings, VeloraApp, make_app

pytestmark = pytest.mark.ui

NOW = datetime(2026, 11, 23, 19, 45, 0)
SnapCompare = Callable[..., bool]


def sample_app(folder: Path) -> VeloraApp:
    """The app on a copy of the sample in `folder`, the working directory."""
    shutil.copyfile(SAMPLE_DB, folder / "metrics.db")
    return make_app([folder / "metrics.db"], Settings(live=False, clock=lambda: NOW))


def keys_then_settle(*keys: str) -> Callable[[Pilot[Any]], Awaitable[None]]:
    async def run_before(pilot: Pilot[Any]) -> None:
        await settle(pilot)
        for key in keys:
            await pilot.press(key)
            await settle(pilot)

    return run_before


async def settle(pilot: Pilot[Any]) -> None:
    for _ in range(3):
        await pilot.app.workers.wait_for_complete()
        while paced_show_due(pilot.app):
            await pilot.pause(0.02)
        await pilot.pause()


SCREENS: Iterable[tuple[str, tuple[str, ...]]] = (
    ("list", ()),
    ("charts", ("enter",)),
    ("episodes", ("enter", "2")),
    ("config", ("enter", "3")),
    ("help", ("question_mark",)),
    ("help-end", ("question_mark", "end")),  # the filter's syntax
    ("compare", ("space", "space", "c")),
    ("diff", ("space", "space", "d")),
)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
@pytest.mark.parametrize(("name", "keys"), SCREENS, ids=[name for name, _ in SCREENS])
def test_screen(
    snap_compare: SnapCompare,
    name: str,
    keys: tuple[str, ...],
    size: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    app = sample_app(tmp_path)
    assert snap_compare(app, terminal_size=size, run_before=keys_then_settle(*keys))
