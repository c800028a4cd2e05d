"""Messages passed between the app, its screens and widgets."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from velora_tui.data.records import Update


@dataclass
class DataChanged(Message):
    """The monitor read something new (or a heartbeat passed, with no updates)."""

    updates: list[Update]
    heartbeat: bool = False
