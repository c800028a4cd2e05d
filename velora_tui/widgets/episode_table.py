"""The live tail of an experiment's episodes, with follow mode as in good log viewers.

While following, new rows scroll into view. Moving up (keys, page up, mouse wheel) stops
following and counts the rows that arrive meanwhile; `f` or End resumes. Between MAX_ROWS and
2 x MAX_ROWS rows are kept, so memory stays bounded however long training runs; the table is
trimmed back in one rebuild (DataTable.remove_row re-indexes every row: one per new row froze the
app at 1,000 episodes/s).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import DataTable

from velora_tui.data.records import EpisodeRow
from velora_tui.format import clock
from velora_tui.render import number_cell

MAX_ROWS = 1_000
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

    def on_mount(self) -> None:
        for key, label in COLUMNS:
            self.add_column(label, key=key)

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
        self.last_id = fresh[-1].id
        if self.following:
            self.move_cursor(row=self.row_count - 1, animate=False)
        else:
            self.unseen += len(fresh)

    def reset(self) -> None:
        self.clear()
        self.kept.clear()
        self.last_id = 0
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
