"""The live tail of an experiment's episodes, with follow mode as in good log viewers.

While following, new rows scroll into view. Moving up (keys, page up, mouse wheel, a click on an
older row) stops following and counts the rows that arrive meanwhile; `f` or End resumes. The
newest MAX_ROWS rows are kept, so memory stays bounded however long training runs.

A ScrollView on Textual's line API rather than a DataTable: adding rows is an append to a deque,
and a paint draws only the rows on screen, each row's cells formatted once. DataTable formats and
re-renders every visible cell after each added row, and re-lays out the screen as its height
grows: under a fast writer that takes most of the UI thread, and keys wait.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import NamedTuple

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.cache import LRUCache
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from velora_tui.data.records import EPISODE_COLUMNS, EpisodeRow
from velora_tui.report.format import clock
from velora_tui.tui.render import number_part
from velora_tui.tui.widgets.pacing import Paced

MAX_ROWS = 1_000
FOLLOW_HELP = "follow new episodes"
UP_HELP = "episodes: move up (stops following)"
DOWN_HELP = "episodes: move down"
REPAINT_INTERVAL = 0.1
HEADER_HEIGHT = 1
PADDING = 1  # blank cells each side of a column
COLUMNS = (  # (label, holds numbers: aligned right)
    ("Episode", False),
    *((column.label, True) for column in EPISODE_COLUMNS),
    ("Time", False),
)
# Room for the usual values from the start ("-1234.56", a full timestamp), so columns rarely
# widen while the tail scrolls; a wider value still widens its column.
MIN_WIDTHS = (7, 9, 6, 9, 8, 10, 11, 12, 19)


Part = tuple[str, str]  # text, style
Cell = tuple[Part, ...]
FLAG: Part = (" !", "bold red")


def cells(row: EpisodeRow) -> tuple[Cell, ...]:
    """A row's cells as (text, style) parts. Plain tuples of strings, which the garbage
    collector stops looking at, where nine Text objects are dozens of objects it keeps scanning."""
    episode: Part = ("-" if row.episode_num is None else str(row.episode_num), "")
    return (
        (episode, FLAG) if row.has_nonfinite else (episode,),
        *((number_part(getattr(row, column.name), column.digits),) for column in EPISODE_COLUMNS),
        ((clock(row.created_at), "dim"),),
    )


# (row id or None for the header, column widths, style, horizontal scroll, view width)
LineKey = tuple[int | None, tuple[int, ...], Style, int, int]


class LineStyles(NamedTuple):
    base: Style
    header: Style
    cursor: Style
    even: Style


HEADER: tuple[Cell, ...] = tuple(((label, ""),) for label, _ in COLUMNS)
HEADER_WIDTHS = tuple(cell_len(label) for label, _ in COLUMNS)
RIGHT = tuple(right for _, right in COLUMNS)


class EpisodeTable(ScrollView, can_focus=True):
    COMPONENT_CLASSES = {
        "episode-table--header",
        "episode-table--cursor",
        "episode-table--even-row",
    }
    DEFAULT_CSS = """
    EpisodeTable {
        background: $surface;
        color: $foreground;
        & > .episode-table--header {
            text-style: bold;
            background: $panel;
            color: $foreground;
        }
        & > .episode-table--even-row {
            background: $surface-lighten-1 50%;
        }
        & > .episode-table--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
        &:focus {
            background-tint: $foreground 5%;
            & > .episode-table--cursor {
                background: $block-cursor-background;
                color: $block-cursor-foreground;
                text-style: $block-cursor-text-style;
            }
        }
        &:dark > .episode-table--even-row {
            background: $surface-darken-1 40%;
        }
    }
    """
    BINDINGS = [
        # `f` is the screen's: one key in the footer, in the same place whichever view has focus.
        Binding("end", "follow", "Follow", show=False, tooltip=FOLLOW_HELP),
        Binding("up,k", "cursor_up", "Up", show=False, tooltip=UP_HELP),
        Binding("down,j", "cursor_down", "Down", show=False, tooltip=DOWN_HELP),
        Binding("pageup", "page_up", "Page up", show=False, tooltip=UP_HELP),
        Binding("pagedown", "page_down", "Page down", show=False, tooltip=DOWN_HELP),
        Binding("home", "first", "First", show=False, tooltip=UP_HELP),
    ]

    following: reactive[bool] = reactive(True)
    unseen: reactive[int] = reactive(0)

    class FollowChanged(Message):
        def __init__(self, following: bool, unseen: int) -> None:
            super().__init__()
            self.following = following
            self.unseen = unseen

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.kept: deque[EpisodeRow] = deque(maxlen=MAX_ROWS)
        self.last_id = 0
        self.cursor_row = 0
        self.widths = list(MIN_WIDTHS)
        self._cells: LRUCache[int, tuple[tuple[Cell, ...], tuple[int, ...]]] = LRUCache(1_024)
        self._strips: LRUCache[LineKey, Strip] = LRUCache(256)
        self._header: tuple[LineKey, Strip] | None = None
        self._styles = LineStyles(Style(), Style(), Style(), Style())
        self.repaint = Paced(self, REPAINT_INTERVAL, self._show_rows)

    # -- rows ------------------------------------------------------------------------------

    def add_episodes(self, rows: Iterable[EpisodeRow]) -> None:
        fresh = [row for row in rows if row.id > self.last_id][-MAX_ROWS:]
        if not fresh:
            return
        dropped = max(0, len(self.kept) + len(fresh) - MAX_ROWS)
        self.kept.extend(fresh)
        self.last_id = fresh[-1].id
        if self.following:
            self.cursor_row = len(self.kept) - 1
        else:
            self.unseen += len(fresh)
            if dropped:
                # The rows in view moved up the deque: keep the same rows in view.
                self._resize()
                self.cursor_row = max(0, self.cursor_row - dropped)
                self.scroll_to(y=max(0, self.scroll_y - dropped), animate=False, immediate=True)
        # Rows arriving by the thousand a second are shown 10 times a second, not per batch.
        self.repaint.request()

    def _show_rows(self) -> None:
        if not self.shown():
            # On a hidden tab: sized and drawn when it shows (on_show). Its refresh, or
            # `is_on_screen`, would look up every widget's place, laid out anew after each
            # reflow: 4-6% of the app's CPU on the charts while a fast writer streams.
            return
        self._resize()
        # Scrolling recomposes the screen.
        if self.following and self.is_on_screen:
            self.scroll_end(animate=False, immediate=True)
        self.refresh()

    def shown(self) -> bool:
        """No node above it hidden: its tab is the active one."""
        return all(node.display for node in self.ancestors_with_self)

    def reset(self) -> None:
        self.repaint.cancel()
        self.kept.clear()
        self.last_id = 0
        self.cursor_row = 0
        self.unseen = 0
        self._resize()
        self.refresh()

    @property
    def line_length(self) -> int:
        return sum(self.widths) + 2 * PADDING * len(self.widths)

    def _resize(self) -> None:
        size = Size(self.line_length, len(self.kept) + HEADER_HEIGHT)
        if size == self.virtual_size:
            return
        # Not `self.virtual_size = size`: that lays out the whole screen (up to 10 times a
        # second while rows stream in), and the tail's own size never depends on its rows.
        # Only its scrollbars do; a scrollbar that appears or goes still asks for a layout.
        self.set_reactive(EpisodeTable.virtual_size, size)
        self._scroll_update(size)
        self.refresh()

    # -- drawing ---------------------------------------------------------------------------

    def render_lines(self, crop: Region) -> list[Strip]:
        self._measure_rows_in_view()
        # Worked out once a paint, not once a line (each is a lookup through the CSS).
        base = self.rich_style
        self._styles = LineStyles(
            base,
            base + self.get_component_rich_style("episode-table--header"),
            base + self.get_component_rich_style("episode-table--cursor"),
            base + self.get_component_rich_style("episode-table--even-row"),
        )
        return super().render_lines(crop)

    def _measure_rows_in_view(self) -> None:
        """Widen columns for the rows about to be drawn, before the header is drawn."""
        start = int(self.scroll_y)
        wider = list(self.widths)
        for index in range(start, min(len(self.kept), start + self.size.height)):
            for column, length in enumerate(self._row_cells(self.kept[index])[1]):
                wider[column] = max(wider[column], length)
        if wider != self.widths:
            self.widths = wider
            self._resize()

    def _row_cells(self, row: EpisodeRow) -> tuple[tuple[Cell, ...], tuple[int, ...]]:
        """A row's cells and their widths, worked out once."""
        found = self._cells.get(row.id)
        if found is None:
            row_cells = cells(row)
            found = row_cells, tuple(sum(cell_len(text) for text, _ in c) for c in row_cells)
            self._cells[row.id] = found
        return found

    def _line(
        self,
        cells_and_widths: tuple[tuple[Cell, ...], tuple[int, ...]],
        style: Style,
        scroll_x: int,
        width: int,
    ) -> Strip:
        """One screen line of padded cells, in as few segments as its styles allow (one for
        most rows), built straight at the view's width: one Strip a row, not three."""
        segments: list[Segment] = []
        run: list[str] = []
        run_style = style
        pad = " " * PADDING

        def add(text: str, text_style: Style) -> None:
            nonlocal run_style
            if text_style != run_style and run:
                segments.append(Segment("".join(run), run_style))
                run.clear()
            run_style = text_style
            run.append(text)

        console = self.app.console
        row_cells, cell_widths = cells_and_widths
        columns = zip(row_cells, cell_widths, self.widths, RIGHT, strict=True)
        for cell, cell_width, column_width, right in columns:
            room = max(0, column_width - cell_width)
            add(pad + " " * (room if right else 0), style)
            for text, part_style in cell:
                # console.get_style parses through rich's cache: no cache of our own needed.
                add(text, style + console.get_style(part_style) if part_style else style)
            add(" " * (0 if right else room) + pad, style)
        length = self.line_length
        if scroll_x == 0 and length <= width:
            add(" " * (width - length), style)
            segments.append(Segment("".join(run), run_style))
            return Strip(segments, width)
        segments.append(Segment("".join(run), run_style))
        return Strip(segments, length).crop_extend(scroll_x, scroll_x + width, style)

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        styles = self._styles
        widths = tuple(self.widths)
        if y < HEADER_HEIGHT:
            key: LineKey = (None, widths, styles.header, scroll_x, width)
            if self._header is None or self._header[0] != key:
                line = self._line((HEADER, HEADER_WIDTHS), styles.header, scroll_x, width)
                self._header = key, line
            return self._header[1]
        index = scroll_y + y - HEADER_HEIGHT
        if index >= len(self.kept):
            return Strip.blank(width, styles.base)
        row = self.kept[index]
        if index == self.cursor_row:
            style = styles.cursor
        elif row.id % 2 == 0:
            style = styles.even
        else:
            style = styles.base
        key = (row.id, widths, style, scroll_x, width)
        strip = self._strips.get(key)
        if strip is None:
            strip = self._strips[key] = self._line(self._row_cells(row), style, scroll_x, width)
        return strip

    # -- cursor and following --------------------------------------------------------------

    @property
    def page(self) -> int:
        return max(1, self.scrollable_content_region.height - HEADER_HEIGHT)

    def move_cursor(self, row: int) -> None:
        """Put the cursor on row `row` (clamped) and scroll it into view."""
        if not self.kept:
            return
        self.cursor_row = max(0, min(row, len(self.kept) - 1))
        if self.cursor_row < self.scroll_y:
            self.scroll_to(y=self.cursor_row, animate=False, immediate=True)
        elif self.cursor_row >= self.scroll_y + self.page:
            self.scroll_to(y=self.cursor_row - self.page + 1, animate=False, immediate=True)
        self.refresh()

    def on_show(self) -> None:
        self._resize()  # rows that came while it was hidden
        if self.following:
            self.action_follow()

    def on_resize(self) -> None:
        if self.following:
            self.action_follow()

    def stop_following(self) -> None:
        if self.following:
            self.following = False

    def action_follow(self) -> None:
        self.following = True
        self.unseen = 0
        if self.kept:
            self.cursor_row = len(self.kept) - 1
        self.scroll_end(animate=False)
        self.refresh()

    def action_cursor_up(self) -> None:
        self.stop_following()
        self.move_cursor(self.cursor_row - 1)

    def action_cursor_down(self) -> None:
        self.move_cursor(self.cursor_row + 1)

    def action_page_up(self) -> None:
        self.stop_following()
        self.move_cursor(self.cursor_row - self.page)

    def action_page_down(self) -> None:
        self.move_cursor(self.cursor_row + self.page)

    def action_first(self) -> None:
        self.stop_following()
        self.move_cursor(0)

    def watch_following(self) -> None:
        self.post_message(self.FollowChanged(self.following, self.unseen))

    def watch_unseen(self) -> None:
        self.post_message(self.FollowChanged(self.following, self.unseen))

    def _on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        self.stop_following()
        super()._on_mouse_scroll_up(event)

    def on_click(self, event: events.Click) -> None:
        index = int(self.scroll_y) + event.y - HEADER_HEIGHT
        if event.y < HEADER_HEIGHT or index >= len(self.kept):
            return
        if index < len(self.kept) - 1:
            self.stop_following()
        self.move_cursor(index)
