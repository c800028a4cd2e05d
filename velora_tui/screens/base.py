"""What every screen of the app shares."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import on
from textual.binding import ActiveBinding
from textual.events import ScreenResume
from textual.keys import REPLACED_KEYS, key_to_character
from textual.screen import ModalScreen, Screen

from velora_tui.widgets.status_bar import StatusBar

if TYPE_CHECKING:
    from velora_tui.app import VeloraApp


class VeloraScreen(Screen[None]):
    """Screens get `DataChanged` only while on screen; one left behind (an experiment opened on
    top of the list) is marked stale and catches up when it shows again. Messages to a screen
    hidden behind another make Textual repaint the whole top screen on every one of them.
    """

    stale = False

    def show_status(self) -> None:
        """The status line at the bottom: sources, their states, the feed, the last update."""
        app = self.velora
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
        (Textual leaves in the ones it renames, so `+/-` was offered in the config search)."""
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
    def velora(self) -> VeloraApp:
        """The app, typed: its monitor, settings and clock."""
        from velora_tui.app import VeloraApp

        assert isinstance(self.app, VeloraApp)
        return self.app

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
