"""How the app runs: what the command line and the tests choose (no Textual import)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from velora_tui.report.alerts import HealthRules

if TYPE_CHECKING:
    from velora_tui.report.user_settings import UserSettings


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
    # The health rules' thresholds and the user's targets (settings.toml, --target).
    health: HealthRules = field(default_factory=HealthRules)
    targets: dict[str, float] = field(default_factory=dict)
    # The theme to start with (None: Textual's default), and the settings file the app saves
    # its own changes to (theme, smoothing); None: nothing is saved (the tests).
    theme: str | None = None
    smoothing: float | None = None  # the charts' (None: their default)
    x_axis: str | None = None
    band: str | None = None  # the group charts' ("std" or "min-max"; None: theirs)
    settings_file: Path | None = None
    # A line to show at the start: what in the settings file was not used.
    settings_problem: str | None = None


def from_user(user: UserSettings | None, **chosen: object) -> Settings:
    """The app's settings from the user's (settings.toml with the flags applied) and the
    command line's other choices."""
    settings = Settings(**chosen)  # type: ignore[arg-type]
    if user is None:
        return settings
    settings.health, settings.targets = user.health, dict(user.targets)
    settings.theme = user.theme
    # The charts' own defaults unless the file or a flag says otherwise.
    if user.source("smoothing") != "default":
        settings.smoothing = user.smoothing
    if user.source("x_axis") != "default":
        settings.x_axis = user.x_axis
    if user.source("band") != "default":
        settings.band = user.band
    settings.settings_file = user.path
    settings.settings_problem = user.problem()
    if settings.notify is None:
        settings.notify = user.notify_method()
    return settings
