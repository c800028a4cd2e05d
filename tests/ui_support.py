"""Helpers of the UI tests (test_app, test_snapshots)."""

from __future__ import annotations

from typing import Any

from textual.app import App

from velora_tui.widgets.pacing import Paced


def paced_show_due(app: App[Any]) -> bool:
    """Some view of the current screen has a paced show waiting for the end of its interval
    (see widgets/pacing.py): what is on screen is about to change."""
    screen = app.screen
    return any(
        isinstance(value, Paced) and value.timer is not None
        for node in (screen, *screen.walk_children())
        for value in vars(node).values()
    )
