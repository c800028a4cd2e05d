"""One line of text that is redrawn only when it changes."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static


class Line(Static):
    """A one-line Static of fixed size (its text never changes its layout), updated with
    `show`: the same text again, as most batches of new rows bring, costs nothing."""

    DEFAULT_CSS = "Line { width: 1fr; height: 1; }"

    shown: Text | str | None = None

    def show(self, text: Text | str) -> None:
        if text != self.shown:
            self.shown = text
            self.update(text, layout=False)
