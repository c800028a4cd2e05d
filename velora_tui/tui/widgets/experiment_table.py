"""The experiment list: one row per experiment, updated cell by cell as episodes arrive."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from rich.cells import cell_len
from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.cache import LRUCache
from textual.coordinate import Coordinate
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey

from velora_tui.data.cleaning import clean_text
from velora_tui.data.records import ExperimentSummary, Key
from velora_tui.data.slurm import describe, describe_tie
from velora_tui.report.format import PENDING, ago, db_tag, episode_count
from velora_tui.tui.render import number_cell, spark, status_cell, text_cell

COLUMNS = (
    ("status", " "),
    ("id", "ID"),
    ("agent", "Agent"),
    ("env", "Env"),
    ("episodes", "Episodes"),
    ("last", "Last"),
    ("best", "Best"),
    ("avg", "Avg"),
    ("spark", "Reward"),
    ("health", "Health"),  # only once some run has a mark (show_health)
    ("active", "Active"),
    ("slurm", "Slurm job"),  # only with a slurm: source (show_slurm)
)
OPEN_HELP = "open the highlighted experiment"
SPARK_WIDTH = 14
# What to leave out when the terminal is too narrow for every column (80 columns: the preview
# under the list still shows the selected run's best reward and its reward sparkline).
NARROWER = (("avg",), ("avg", "best", "spark"))


def slurm_cell(s: ExperimentSummary, now: datetime) -> Text:
    """Its Slurm job's state: time left against the limit, why it pends, how it ended; an
    ambiguous tie said as such (plain text: names and reasons come from Slurm)."""
    if s.job is None:
        return Text("")
    job = s.job.job
    if job is None:
        return Text(clean_text(describe_tie(s.job, now), 60), style="yellow")
    style = "green" if job.running else "yellow" if job.pending else "blue"
    if job.ended and job.state != "COMPLETED":
        style = "bold red"
    return Text(clean_text(f"{job.job_id} {describe(job, now)}", 60), style=style)


# A run's health (report/alerts.py: its marks), as the list shows it.
HEALTH_STYLES = {
    "solved": ("✔ solved", "bold green"),
    "plateau": ("plateau", "yellow"),
    "collapse": ("collapse", "bold red"),
    "spike": ("loss spike", "red"),
    "entropy": ("entropy", "yellow"),
    "slow": ("slow", "yellow"),
}


def health_cell(s: ExperimentSummary) -> Text:
    word, style = HEALTH_STYLES.get(s.health, (s.health, ""))
    return Text(word, style=style)


def row_key(key: Key) -> str:
    return f"{key[0]}\0{key[1]}"


NULL_STYLE = Style.null()
SEPARATOR = Text("\n")


def draw_text_cell(
    console: Console, cell: Text, width: int, padding: int, pre: Style, post: Style
) -> list[list[Segment]] | None:
    """A one-line Text cell drawn as DataTable draws it (rich's Styled(Padding(cell)) rendered
    at `width`, one line high, no wrapping), without rich's general machinery: the same steps
    on the one line (Text.wrap's justify and truncate, Padding's spaces, Styled's styles),
    ~0.2 ms a cell less. None for what it does not cover (DataTable draws it)."""
    inner = width - 2 * padding
    justify = cell.justify or "default"
    plain = cell.plain
    if inner < 1 or "\n" in plain or "\t" in plain or justify not in ("default", "left", "right"):
        return None
    overflow = cell.overflow or "fold"
    if overflow == "ignore":
        return None
    line = cell.copy()
    if justify == "left":
        line.truncate(inner, overflow=overflow, pad=True)
    elif justify == "right":
        line.rstrip()
        line.truncate(inner, overflow=overflow)
        line.pad_left(inner - cell_len(line.plain))
    line.truncate(inner, overflow=overflow)
    drawn = Segment.adjust_line_length(
        list(SEPARATOR.join([line]).render(console)), inner, style=NULL_STYLE, pad=True
    )
    if padding:
        space = Segment(" " * padding, NULL_STYLE)
        drawn = [space, *drawn, space]
    styled = list(Segment.apply_style(drawn, pre, post))
    return [Segment.adjust_line_length(styled, width, pad=True)]


class ExperimentTable(DataTable[Text]):
    BINDINGS = [
        Binding("enter", "select_cursor", "Open", tooltip=OPEN_HELP),
        Binding("up,k", "cursor_up", "Up", show=False, tooltip="move in the list"),
        Binding("down,j", "cursor_down", "Down", show=False, tooltip="move in the list"),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.order: list[Key] = []
        self.rendered: dict[Key, list[Text]] = {}
        self.sparks: dict[Key, Sequence[float]] = {}
        self.marked: list[Key] = []
        # Until the user moves the cursor, it stays on the top row as rows arrive and re-sort.
        self.user_moved = False
        self.show_db = False
        self.show_slurm = False  # some run is tied to a Slurm job
        self.show_health = False  # some run has a health mark
        self.shown_columns: tuple[str, ...] = ()
        self.last_shown: tuple[Sequence[ExperimentSummary], datetime] = ((), datetime.min)
        # Each cell as last drawn, with the value drawn: DataTable draws every visible cell
        # again after a change to any one, and a redraw of a streaming list changes a few cells
        # a row (docs/performance.md, "The list's redraws").
        self.drawn_cells: LRUCache[tuple[object, ...], tuple[object, list[list[Segment]]]] = (
            LRUCache(4096)
        )

    def fitting_columns(self) -> tuple[str, ...]:
        """The most columns whose widest cells fit the table's width."""
        widths = {key: len(label) for key, label in COLUMNS}
        for cells in self.rendered.values():
            for (key, _), cell in zip(COLUMNS, cells, strict=True):
                widths[key] = max(widths[key], cell.cell_len)
        widths["spark"] = SPARK_WIDTH
        room = self.size.width - 2  # the vertical scrollbar
        never = (() if self.show_slurm else ("slurm",)) + (() if self.show_health else ("health",))
        for left_out in ((), *NARROWER):
            keys = tuple(key for key, _ in COLUMNS if key not in left_out and key not in never)
            if sum(widths[key] + 2 for key in keys) <= room:
                return keys
        return keys

    def set_columns(self, keys: tuple[str, ...]) -> None:
        self.clear(columns=True)
        for key, label in COLUMNS:
            if key in keys:
                self.add_column(label, key=key, width=SPARK_WIDTH if key == "spark" else None)
        self.shown_columns = keys
        self.order = []  # every row is added again

    def on_resize(self) -> None:
        keys = self.fitting_columns()
        if self.rendered and keys != self.shown_columns:
            self.set_columns(keys)
            self.show(*self.last_shown)

    def cells(self, s: ExperimentSummary, now: datetime) -> list[Text]:
        """Every column's cell, shown or not."""
        ident = f"{db_tag(s.db)}/{s.id}" if self.show_db else str(s.id)
        episodes = Text(episode_count(s), justify="right", style="" if s.scanned else "dim")
        best = number_cell(s.best_reward) if s.scanned else Text(PENDING, justify="right")
        if s.last_id is None:  # no episode yet: no value, not a NaN one
            best = Text("-", style="dim", justify="right")
        if s.nonfinite:
            episodes.append(" !", style="bold red")
        status = status_cell(s.status(now))
        if s.key in self.marked:
            status = Text.assemble(("▶", "bold magenta"), status)
        return [
            status,
            Text(ident, justify="right"),
            text_cell(s.agent, 24),
            text_cell(s.env, 28),
            episodes,
            best if s.last_id is None else number_cell(s.last_reward),
            best,
            best if s.last_id is None else number_cell(s.reward_moving_avg),
            Text(spark(self.sparks.get(s.key, ()), SPARK_WIDTH), style="cyan"),
            health_cell(s),
            Text(ago(s.last_activity, now), style="dim"),
            slurm_cell(s, now),
        ]

    def show(
        self,
        summaries: Sequence[ExperimentSummary],
        now: datetime,
        changed: Callable[[Key], bool] | None = None,
    ) -> None:
        """Show `summaries` in this order: rows are added, removed or updated in place."""
        self.last_shown = (summaries, now)
        order = [s.key for s in summaries]
        show_slurm = any(s.job is not None for s in summaries)
        if show_slurm != self.show_slurm:
            self.show_slurm = show_slurm
            self.order = []  # the columns change: every row is added again
        show_health = any(s.health for s in summaries)
        if show_health != self.show_health:
            self.show_health = show_health
            self.order = []
        selected = self.selected_key
        with self.app.batch_update():
            if order != self.order or not self.shown_columns:
                self.rendered = {s.key: self.cells(s, now) for s in summaries}
                keys = self.fitting_columns()
                if keys != self.shown_columns:
                    self.set_columns(keys)
                self.clear()
                for s in summaries:
                    self.add_row(*self.shown_cells(self.rendered[s.key]), key=row_key(s.key))
                self.order = order
                if self.user_moved and selected in order:
                    self.move_cursor(row=order.index(selected), animate=False)
                else:
                    self.move_cursor(row=0, animate=False)
                return
            touched: set[int] = set()
            for s in summaries:
                if changed is not None and not changed(s.key):
                    continue
                key = row_key(s.key)
                cells = self.cells(s, now)
                before = self.rendered.get(s.key, [])
                for index, ((column, _), value) in enumerate(zip(COLUMNS, cells, strict=True)):
                    shown = column in self.shown_columns
                    if shown and (index >= len(before) or before[index] != value):
                        self.update_cell(key, column, value)
                        touched.add(index)
                self.rendered[s.key] = cells
            self.fit_widths(touched)

    def fit_widths(self, indexes: set[int]) -> None:
        """Columns (by index in COLUMNS) whose cells changed made as wide as their widest cell.
        DataTable's own `update_width` measures every cell of a column for each changed cell
        narrower than the column: a redraw of a streaming list measured rows x rows cells. Here
        one cell a column is handed to it, the widest, and only when the width is to change."""
        for index in sorted(indexes):
            name, label = COLUMNS[index]
            column = self.columns.get(ColumnKey(name))
            if column is None or not column.auto_width:
                continue
            widest: Key | None = None
            width = 0
            for key in self.order:
                cell = self.rendered[key][index]
                if widest is None or cell.cell_len > width:
                    widest, width = key, cell.cell_len
            if widest is not None and max(width, len(label)) != column.content_width:
                value = self.rendered[widest][index]
                self.update_cell(row_key(widest), name, value, update_width=True)

    def _render_cell(
        self,
        row_index: int,
        column_index: int,
        base_style: Style,
        width: int,
        cursor: bool = False,
        hover: bool = False,
    ) -> list[list[Segment]]:
        """DataTable's, but a cell whose value, place and style are those of its last drawing
        is not drawn again (DataTable forgets every drawing at any cell's change)."""
        if row_index < 0 or column_index < 0:  # the header
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        cell_key = self.coordinate_to_cell_key(Coordinate(row_index, column_index))
        value = self.get_cell(*cell_key)
        key = (
            cell_key,
            id(value),
            row_index,
            column_index,
            base_style,
            width,
            cursor,
            hover,
            self._show_hover_cursor,
            self._pseudo_class_state,
            self.show_cursor,
            self.cell_padding,
        )
        drawn = self.drawn_cells.get(key)
        if drawn is not None and drawn[0] is value:
            return drawn[1]
        lines = self.draw_cell(value, row_index, column_index, base_style, width, cursor, hover)
        if lines is None:
            lines = super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        self.drawn_cells[key] = (value, lines)
        return lines

    def draw_cell(
        self,
        value: object,
        row_index: int,
        column_index: int,
        base_style: Style,
        width: int,
        cursor: bool,
        hover: bool,
    ) -> list[list[Segment]] | None:
        """DataTable._render_cell's drawing of a one-line Text cell, by draw_text_cell; None
        where the table is set up otherwise than this list is (DataTable draws it then)."""
        if not isinstance(value, Text) or self.fixed_rows or self.fixed_columns:
            return None
        component, post = self._get_styles_to_render_cell(
            False,
            False,
            False,
            hover,
            cursor,
            self.show_cursor,
            self._show_hover_cursor,
            self.cursor_foreground_priority == "css",
            self.cursor_background_priority == "css",
        )
        base = base_style + Style.from_meta({"row": row_index, "column": column_index})
        pre = base + component
        return draw_text_cell(self.app.console, value, width, self.cell_padding, pre, post)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self.drawn_cells.clear()  # a theme changed, or a class: the styles are others

    def shown_cells(self, cells: list[Text]) -> list[Text]:
        return [
            cell for (key, _), cell in zip(COLUMNS, cells, strict=True) if key in self.shown_columns
        ]

    def toggle_mark(self, key: Key) -> None:
        if key in self.marked:
            self.marked.remove(key)
        else:
            self.marked.append(key)

    @property
    def selected_key(self) -> Key | None:
        if not self.order or not 0 <= self.cursor_row < len(self.order):
            return None
        return self.order[self.cursor_row]

    def select_key(self, key: Key) -> None:
        if key in self.order:
            self.user_moved = True
            self.move_cursor(row=self.order.index(key), animate=False)

    def _moved(self) -> None:
        self.user_moved = True

    def action_cursor_up(self) -> None:
        self._moved()
        super().action_cursor_up()

    def action_cursor_down(self) -> None:
        self._moved()
        super().action_cursor_down()

    def action_page_up(self) -> None:
        self._moved()
        super().action_page_up()

    def action_page_down(self) -> None:
        self._moved()
        super().action_page_down()

    def action_scroll_top(self) -> None:
        self._moved()
        super().action_scroll_top()

    def action_scroll_bottom(self) -> None:
        self._moved()
        super().action_scroll_bottom()

    async def _on_click(self, event: events.Click) -> None:
        self._moved()
        await super()._on_click(event)
