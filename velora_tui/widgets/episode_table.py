"""The live tail of an experiment's episodes, with follow mode as in good log viewers.

While following, new rows scroll into view. Moving up (keys, page up, mouse wheel) stops
following and counts the rows that arrive meanwhile; `f` or End resumes. Between MAX_ROWS and
2 x MAX_ROWS rows are kept, so memory stays bounded however long training runs; the table is
trimmed back in one rebuild (DataTable.remove_row re-indexes every row: one per new row froze the
app at 1,000 episodes/s). Rows wait in `kept` while the tab is hidden, and while they arrive by
the hundred they enter the table five times a second rather than with every batch.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable

from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.reactive import reactive
from textual.timer import Timer
from textual.widgets import DataTable
from textual.widgets.data_table import RowKey

from velora_tui.data.records import EpisodeRow
from velora_tui.format import clock
from velora_tui.render import number_cell

MAX_ROWS = 500
# More rows than anyone can read at once: then the table takes them at most 5 times a second.
BUSY_ROWS = 10
FLUSH_INTERVAL = 0.2
COLUMNS = (
    ("episode", "Episode"),
    ("reward", "Reward"),
    ("length", "Length"),
    ("avg", "Avg"),
    ("std", "Std"),
    ("actor", "Actor loss"),
    ("critic", "Critic loss"),
    ("entropy", "Entropy loss"),
    ("time", "Time"),
)


class EpisodeTable(DataTable[Text]):
    BINDINGS = [
        Binding("f", "follow", "Follow"),
        Binding("end", "follow", "Follow", show=False),
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
    ]

    following: reactive[bool] = reactive(True)
    unseen: reactive[int] = reactive(0)

    class FollowChanged(Message):
        def __init__(self, following: bool, unseen: int) -> None:
            super().__init__()
            self.following = following
            self.unseen = unseen

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.kept: deque[EpisodeRow] = deque(maxlen=MAX_ROWS)
        self.last_id = 0
        self.hidden = False
        self.behind = 0  # rows kept but not yet in the table
        self.flush_timer: Timer | None = None
        self.flushed = 0.0
        self.last_flush_rows = 0

    def on_mount(self) -> None:
        for key, label in COLUMNS:
            self.add_column(label, key=key)

    def _update_dimensions(self, new_rows: Iterable[RowKey]) -> None:
        """Column widths from each cell's cell length: every cell here is one line of Text.

        DataTable measures each new cell through the console (~25 us a cell: 40% of a core at
        2,000 episodes/s); the widths come out the same. Should DataTable stop calling this,
        its own measuring takes over: slower, not wrong.
        """
        rows = [self.get_row(key) for key in new_rows if key in self.rows]
        for index, column in enumerate(self.ordered_columns):
            widest = max((row[index].cell_len for row in rows), default=0)
            column.content_width = max(column.content_width, widest)
        super()._update_dimensions(())

    @staticmethod
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

    def add_episodes(self, rows: Iterable[EpisodeRow]) -> None:
        fresh = [row for row in rows if row.id > self.last_id][-MAX_ROWS:]
        if not fresh:
            return
        self.kept.extend(fresh)
        self.last_id = fresh[-1].id
        self.behind += len(fresh)
        if not self.following:
            self.unseen += len(fresh)
        if self.hidden or self.flush_timer is not None:
            return
        wait = self.flushed + FLUSH_INTERVAL - time.monotonic()
        if self.last_flush_rows > BUSY_ROWS and wait > 0:
            self.flush_timer = self.set_timer(wait, self.flush)
        else:
            self.flush()

    def show_hidden(self, hidden: bool) -> None:
        """While its tab is hidden, rows are only kept; they go into the table when it shows."""
        self.hidden = hidden
        if not hidden:
            self.flush()

    def flush(self) -> None:
        """Put the rows kept since the last flush into the table."""
        self.flush_timer = None
        if self.hidden or not self.behind:
            return
        behind, self.behind = min(self.behind, MAX_ROWS), 0
        self._append(list(self.kept)[-behind:])
        self.flushed = time.monotonic()
        self.last_flush_rows = behind

    def _append(self, fresh: list[EpisodeRow]) -> None:
        with self.app.batch_update():
            if self.row_count + len(fresh) > 2 * MAX_ROWS:
                cursor_from_end = self.row_count - self.cursor_row
                self.clear()
                for row in list(self.kept)[-MAX_ROWS:]:
                    self.add_row(*self.cells(row), key=str(row.id))
                if not self.following:
                    self.move_cursor(row=max(0, self.row_count - cursor_from_end), animate=False)
            else:
                for row in fresh:
                    self.add_row(*self.cells(row), key=str(row.id))
        if self.following:
            self.move_cursor(row=self.row_count - 1, animate=False)

    def reset(self) -> None:
        if self.flush_timer is not None:
            self.flush_timer.stop()
            self.flush_timer = None
        self.clear()
        self.kept.clear()
        self.last_id = 0
        self.behind = 0
        self.unseen = 0

    def stop_following(self) -> None:
        if self.following:
            self.following = False

    def action_follow(self) -> None:
        self.following = True
        self.unseen = 0
        if self.row_count:
            self.move_cursor(row=self.row_count - 1, animate=False)
        self.scroll_end(animate=False)

    def watch_following(self) -> None:
        self.post_message(self.FollowChanged(self.following, self.unseen))

    def watch_unseen(self) -> None:
        self.post_message(self.FollowChanged(self.following, self.unseen))

    def action_cursor_up(self) -> None:
        self.stop_following()
        super().action_cursor_up()

    def action_page_up(self) -> None:
        self.stop_following()
        super().action_page_up()

    def action_scroll_top(self) -> None:
        self.stop_following()
        super().action_scroll_top()

    def _on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        self.stop_following()
        super()._on_mouse_scroll_up(event)
