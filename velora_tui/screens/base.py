"""What every screen of the app shares."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.screen import Screen

if TYPE_CHECKING:
    from velora_tui.app import VeloraApp


class VeloraScreen(Screen[None]):
    @property
    def velora(self) -> VeloraApp:
        """The app, typed: its monitor, settings and clock."""
        from velora_tui.app import VeloraApp

        assert isinstance(self.app, VeloraApp)
        return self.app
