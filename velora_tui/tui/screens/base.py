"""What every screen of the app shares."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol, runtime_checkable

from textual import on
from textual.binding import ActiveBinding
from textual.events import ScreenResume
from textual.keys import REPLACED_KEYS, key_to_character
from textual.screen import ModalScreen, Screen

from velora_tui.data.monitor import Monitor
from velora_tui.tui.settings import Settings
from velora_tui.tui.widgets.status_bar import StatusBar
from velora_tui.tui.workers import ReportsWorkerFailures


@runtime_checkable
class Host(Protocol):
    """What the screens need of the app, which implements it. Screens never import the app:
    they ask through this, or post a message that bubbles up to it (`OpenExperiment`)."""

    @property
    def monitor(self) -> Monitor:
        """Every source, its summaries and its readers."""

    @property
    def settings(self) -> Settings: ...

    @property
    def last_update(self) -> datetime | None:
        """When the monitor last read something new."""

    def now(self) -> datetime:
        """The app's clock (fixed in snapshots)."""

    def feed_description(self) -> str:
        """How changes are noticed: watching, polling, paused."""

    def first_read_done(self) -> bool:
        """Whether the first read of every source is over (before it, summaries are half
        read)."""

    def smoothing_chosen(self, smoothing: float) -> None:
        """The user changed the charts' smoothing: kept in the settings file."""


class VeloraScreen(ReportsWorkerFailures, Screen[None]):
    """Screens get `DataChanged` only while on screen; one left behind (an experiment opened on
    top of the list) is marked stale and catches up when it shows again. Messages to a screen
    hidden behind another make Textual repaint the whole top screen on every one of them.
    """

    stale = False
    _host: Host | None = None

    def show_status(self) -> None:
        """The status line at the bottom: sources, their states, the feed, the last update."""
        app = self.host
        self.query_one(StatusBar).show_sources(
            app.monitor.statuses(), app.feed_description(), app.last_update
        )

    def catch_up(self) -> None:
        """Bring everything up to date after the screen was hidden while data changed."""

    @on(ScreenResume)
    def _resumed(self) -> None:
        if self.stale:
            self.stale = False
            self.catch_up()

    @property
    def active_bindings(self) -> dict[str, ActiveBinding]:
        """The keys the footer and help show: without those the focused widget types instead
        (Textual leaves in the ones it renames, and would offer `+/-` in the config search)."""
        bindings = super().active_bindings
        focused = self.focused
        if focused is None:
            return bindings
        return {
            key: active
            for key, active in bindings.items()
            if active.node is focused or not focused.check_consume_key(key, character_of(key))
        }

    @property
    def host(self) -> Host:
        """The app, seen through what screens need of it."""
        host = self._host
        if host is None:
            app = self.app
            assert isinstance(app, Host)
            host = self._host = app
        return host

    @property
    def is_showing(self) -> bool:
        """On screen: the top screen, or just under the modals (help, palette) on top of it."""
        for screen in reversed(self.app.screen_stack):
            if not isinstance(screen, ModalScreen):
                return screen is self
        return False


def character_of(key: str) -> str | None:
    """The character a key types, for the keys Textual renames too (`plus`, `minus`, `slash`)."""
    return key_to_character(key) or key_to_character(REPLACED_KEYS.get(key, key))
