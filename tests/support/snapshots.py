"""The screens' snapshot tests: the app on the sample at a fixed clock, keys pressed, then
settled."""

from __future__ import annotations

import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from textual.pilot import Pilot

from tests.support.app import NOW, paced_show_due
from tests.support.databases import SAMPLE_DB
from velora_tui.tui.app import Settings, VeloraApp, make_app

SnapCompare = Callable[..., bool]


def sample_app(folder: Path) -> VeloraApp:
    """The app on a copy of the sample in `folder`, the working directory."""
    shutil.copyfile(SAMPLE_DB, folder / "metrics.db")
    return make_app([folder / "metrics.db"], Settings(live=False, clock=lambda: NOW))


def keys_then_settle(*keys: str) -> Callable[[Pilot[Any]], Awaitable[None]]:
    async def run_before(pilot: Pilot[Any]) -> None:
        await settle_screen(pilot)
        for key in keys:
            await pilot.press(key)
            await settle_screen(pilot)

    return run_before


async def settle_screen(pilot: Pilot[Any]) -> None:
    """Every worker done and every paced view shown: the screen is what it will stay."""
    for _ in range(3):
        await pilot.app.workers.wait_for_complete()
        while paced_show_due(pilot.app):
            await pilot.pause(0.02)
        await pilot.pause()
