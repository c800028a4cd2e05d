"""The live tail of an experiment's episodes, with follow mode as in good log viewers.

While following, new rows scroll into view. Moving up (keys, page up, mouse wheel, a click on an
older row) stops following and counts the rows that arrive meanwhile; `f` or End resumes. The
newest MAX_ROWS rows are kept, so memory stays bounded however long training runs.

A ScrollView on Textual's line API rather than a DataTable: adding rows is an append to a deque,
and a paint draws only the rows on screen, each row's cells formatted once. DataTable formats and
re-renders every visible cell after each added row, and re-lays out the screen as its height
grows; at 2,000 episodes/s that took most of the UI thread and keys waited 200-400 ms.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.cache import LRUCache
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from velora_tui.data.records import EpisodeRow
from velora_tui.format import clock
from velora_tui.render import number_cell
from velora_tui.widgets.pacing import Paced

MAX_ROWS = 1_000
REPAINT_INTERVAL = 0.1
HEADER_HEIGHT = 1
PADDING = 1  # blank cells each side of a column
COLUMNS = (  # (label, holds numbers: aligned right)
    ("Episode", False),
    ("Reward", True),
    ("Length", True),
    ("Avg", True),
    ("Std", True),
    ("Actor loss", True),
    ("Critic loss", True),
    ("Entropy loss", True),
    ("Time", False),
)
# Room for the usual values from the start ("-1234.56", a full timestamp), so columns rarely
# widen while the tail scrolls; a wider value still widens its column.
MIN_WIDTHS = (7, 9, 6, 9, 8, 10, 11, 12, 19)


def cells(row: EpisodeRow) -> list[Text]:
    flag = Text(" !", style="bold red") if row.has_nonfinite else Text("")
    return [
        Text.assemble(str(row.episode_num if row.episode_num is not None else "-"), flag),
        number_cell(row.reward),
        Text("-" if row.length is None else str(row.length), justify="right"),
        number_cell(row.reward_moving_avg),
        number_cell(row.reward_moving_std),
        number_cell(row.actor_loss, 4),
        number_cell(row.critic_loss, 4),
        number_cell(row.entropy_loss, 4),
        Text(clock(row.created_at), style="dim"),
    ]


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
        Binding("f", "follow", "Follow"),
        Binding("end", "follow", "Follow", show=False),
        Binding("up,k", "cursor_up", "Up", show=False),
        Binding("down,j", "cursor_down", "Down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home", "first", "First", show=False),
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
        self._cells: LRUCache[int, list[Text]] = LRUCache(1_024)
        self._strips: LRUCache[tuple[int, tuple[int, ...]], Strip] = LRUCache(256)
        self._header: Strip | None = None
        self._base = Style()
        self.repaint = Paced(self, REPAINT_INTERVAL, self._show_rows)

    @property
    def row_count(self) -> int:
        return len(self.kept)

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
        self._resize()
        if self.following:
            self.scroll_end(animate=False, immediate=True)
        self.refresh()

    def reset(self) -> None:
        self.repaint.cancel()
        self.kept.clear()
        self.last_id = 0
        self.cursor_row = 0
        self.unseen = 0
        self._resize()
        self.refresh()

    def _resize(self) -> None:
        width = sum(self.widths) + 2 * PADDING * len(self.widths)
        self.virtual_size = Size(width, len(self.kept) + HEADER_HEIGHT)

    # -- drawing ---------------------------------------------------------------------------

    def render_lines(self, crop: Region) -> list[Strip]:
        self._measure_rows_in_view()
        self._base = self.rich_style  # ~50 us to work out: once a paint, not once a line
        return super().render_lines(crop)

    def _measure_rows_in_view(self) -> None:
        """Widen columns for the rows about to be drawn, before the header is drawn."""
        start = int(self.scroll_y)
        wider = list(self.widths)
        for index in range(start, min(len(self.kept), start + self.size.height)):
            for column, cell in enumerate(self._row_cells(self.kept[index])):
                wider[column] = max(wider[column], cell.cell_len)
        if wider != self.widths:
            self.widths = wider
            self._header = None
            self._resize()

    def _row_cells(self, row: EpisodeRow) -> list[Text]:
        found = self._cells.get(row.id)
        if found is None:
            found = cells(row)
            self._cells[row.id] = found
        return found

    def _line(self, texts: list[Text]) -> Strip:
        """One line of padded cells. A one-style cell (all but a flagged episode number) is one
        segment: going through Text.render for each cell made a paint of new rows 5x slower."""
        segments: list[Segment] = []
        console = self.app.console
        pad = " " * PADDING
        for text, width in zip(texts, self.widths, strict=True):
            room = max(0, width - text.cell_len)
            left, right = (room, 0) if text.justify == "right" else (0, room)
            if text.spans:
                segments.append(Segment(pad + " " * left))
                segments.extend(text.render(console))
                segments.append(Segment(" " * right + pad))
            else:
                style = console.get_style(text.style) if text.style else None
                cell = f"{pad}{' ' * left}{text.plain}{' ' * right}{pad}"
                segments.append(Segment(cell, style))
        return Strip(segments)

    def _header_strip(self) -> Strip:
        if self._header is None:
            labels = [Text(name, justify="right" if right else "left") for name, right in COLUMNS]
            self._header = self._line(labels)
        return self._header

    def _row_strip(self, row: EpisodeRow) -> Strip:
        key = (row.id, tuple(self.widths))
        strip = self._strips.get(key)
        if strip is None:
            strip = self._line(self._row_cells(row))
            self._strips[key] = strip
        return strip

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        base = self._base
        if y < HEADER_HEIGHT:
            style = base + self.get_component_rich_style("episode-table--header")
            strip = self._header_strip()
        else:
            index = scroll_y + y - HEADER_HEIGHT
            if index >= len(self.kept):
                return Strip.blank(width, base)
            row = self.kept[index]
            strip = self._row_strip(row)
            style = base
            if index == self.cursor_row:
                style += self.get_component_rich_style("episode-table--cursor")
            elif row.id % 2 == 0:
                style += self.get_component_rich_style("episode-table--even-row")
        return strip.crop_extend(scroll_x, scroll_x + width, None).apply_style(style)

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
