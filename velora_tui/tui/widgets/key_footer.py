"""The footer of every screen: Textual's Footer, rebuilt only when the keys it shows change."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer

ShownKeys = tuple[tuple[Binding, bool, str], ...]


class KeyFooter(Footer):
    """Footer rebuilds all its keys (a widget each, composed anew) whenever the bindings may
    have changed, which one tab switch announces several times (focus leaves, focus arrives,
    ...). Here the announcements before a rebuild make one rebuild, and none at all when the
    keys to show are the keys shown."""

    def __init__(self) -> None:
        super().__init__()
        self._shown: ShownKeys = ()
        self._rebuild_pending = False

    def compose(self) -> ComposeResult:
        self._shown = self._keys()
        yield from super().compose()

    def bindings_changed(self, screen: Screen[object]) -> None:
        self._bindings_ready = True
        if self._rebuild_pending or not screen.app.app_focus:
            return
        if self.is_attached and screen is self.screen:
            self._rebuild_pending = True
            self.call_after_refresh(self._rebuild)

    async def _rebuild(self) -> None:
        # Queued on the screen that was active when asked for: it may run after this footer's
        # screen has closed.
        self._rebuild_pending = False
        if self.is_attached and self._keys() != self._shown:
            await self.recompose()

    def _keys(self) -> ShownKeys:
        if not self._bindings_ready:
            return ()
        return tuple(
            (binding, enabled, tooltip)
            for _node, binding, enabled, tooltip in self.screen.active_bindings.values()
            if binding.show
        )
