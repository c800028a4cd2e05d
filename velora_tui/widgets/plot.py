"""A textual-plotext chart whose plot is built in a worker thread.

Building a plot is pure Python: 5-40 ms for a 120x24 chart. Built in `render()`, as
PlotextPlot does, five charts redrawn while a fast writer runs kept keys waiting for
hundreds of milliseconds. Here `draw()` starts a build in a thread and the last finished picture
stays on screen until the new one is ready. The picture is even cut into screen lines there, so
showing it costs the UI thread nothing.
"""

from __future__ import annotations

import threading
from typing import Any

from rich.text import Text
from textual import work
from textual.strip import Strip
from textual_plotext import PlotextPlot
from textual_plotext.plot import Plot

# plotext keeps module-level state: one build at a time.
_BUILDING = threading.Lock()

PictureKey = tuple[int, int, str]  # width, height, plotext theme


class ThreadedPlot(PlotextPlot):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._picture: list[Strip] = []
        self._picture_key: PictureKey | None = None
        self._wanted: PictureKey | None = None
        self._generation = 0

    def state(self) -> Any:
        """What `plot` needs, taken on the UI thread (the build must not read the widget)."""
        raise NotImplementedError

    def plot(self, plt: Plot, width: int, state: Any) -> None:
        """Describe the plot on `plt` (called in the build thread)."""
        raise NotImplementedError

    def draw(self) -> None:
        width, height = self.size
        if not width or not height:
            return  # not laid out yet: render() asks again
        self._generation += 1
        key = (width, height, self._get_plotext_theme_name(self.app.theme))
        self._wanted = key
        self._build(self._generation, key, self.state())

    @work(thread=True, exit_on_error=False, group="plot")
    def _build(self, generation: int, key: PictureKey, state: Any) -> None:
        width, height, theme = key
        with _BUILDING:
            plt = self.plt
            plt.clear_data()
            plt.clear_figure()
            self.plot(plt, width, state)
            plt.plotsize(width, height)
            plt._set_size(width, height)  # as PlotextPlot.render does: resizing needs both
            plt.theme(theme)
            text = Text.from_ansi(plt.build(), no_wrap=True, end="")
        console = self.app.console
        lines = console.render_lines(text, console.options.update(width=width), pad=True)
        picture = [Strip(line, width) for line in lines[:height]]
        self.app.call_from_thread(self._show_picture, generation, key, picture)

    def _show_picture(self, generation: int, key: PictureKey, picture: list[Strip]) -> None:
        if generation == self._generation:
            self._picture, self._picture_key = picture, key
            self.refresh()

    def render_line(self, y: int) -> Strip:
        """The built picture's lines (Textual's line API: nothing is rendered here)."""
        key = (self.size.width, self.size.height, self._get_plotext_theme_name(self.app.theme))
        if key != self._picture_key and key != self._wanted:
            self._wanted = key  # resized or re-themed since the last build
            self.call_later(self.draw)
        if y < len(self._picture):
            return self._picture[y]
        return Strip.blank(self.size.width)
