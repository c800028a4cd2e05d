"""Leading-and-trailing pacing for views that new rows would otherwise redraw as often as
batches of rows arrive: the first request shows at once, requests within `interval` of the last
show are folded into one show at its end."""

from __future__ import annotations

import time
from collections.abc import Callable

from textual.message_pump import MessagePump
from textual.timer import Timer


class Paced:
    def __init__(self, node: MessagePump, interval: float, show: Callable[[], None]) -> None:
        self.node = node
        self.interval = interval
        self.show = show
        self.timer: Timer | None = None
        self.shown = 0.0

    def request(self) -> None:
        if self.timer is not None:
            return
        wait = self.shown + self.interval - time.monotonic()
        if wait > 0:
            self.timer = self.node.set_timer(wait, self._due)
        else:
            self._due()

    def cancel(self) -> None:
        if self.timer is not None:
            self.timer.stop()
            self.timer = None

    def _due(self) -> None:
        self.timer = None
        self.shown = time.monotonic()
        self.show()
