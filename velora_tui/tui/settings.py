"""How the app runs: what the command line and the tests choose (no Textual import)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path


@dataclass
class Settings:
    poll: bool = False
    # Watch for changes. Off for deterministic snapshots (no watcher, no heartbeat).
    live: bool = True
    clock: Callable[[], datetime] = datetime.now
    on_exit: Callable[[], None] | None = None
    output_dir: Path = field(default_factory=Path.cwd)
    # Alerts also as desktop notifications through the terminal: a notify.METHODS name, or None.
    notify: str | None = None
