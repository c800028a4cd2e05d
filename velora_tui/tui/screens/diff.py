"""Config diff of two experiments: flattened to dotted keys, side by side."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Header, Static

from velora_tui.data.cleaning import clean_text
from velora_tui.data.config import ConfigView
from velora_tui.data.database import MetricsDatabase
from velora_tui.data.diff import DiffRow, diff_configs, format_value
from velora_tui.data.records import Key
from velora_tui.report.format import experiment_label
from velora_tui.tui.messages import DiffRead
from velora_tui.tui.screens.base import VeloraScreen
from velora_tui.tui.widgets.key_footer import KeyFooter
from velora_tui.tui.workers import read_worker, reply

MARKS = {
    "changed": ("~", "bold yellow"),
    "added": ("+", "bold green"),
    "removed": ("-", "bold red"),
    "same": (" ", "dim"),
}


def tail_of(key: str, width: int) -> str:
    """A dotted key cut at its start, where its parents are, so its own name stays."""
    return key if len(key) <= width else "…" + key[len(key) - width + 1 :]


def cell(text: str, style: str = "") -> Text:
    """One line, cut with an ellipsis at its column's width."""
    return Text(text, style=style, no_wrap=True, overflow="ellipsis")


class DiffScreen(VeloraScreen):
    BINDINGS = [
        Binding("escape", "back", "Back", tooltip="back to the list"),
        Binding(
            "a", "toggle_all", "All keys / differences", tooltip="all keys / only the differences"
        ),
        Binding("j", "down", "Down", show=False, tooltip="move in the table (also ↑ ↓)"),
        Binding("k", "up", "Up", show=False, tooltip="move in the table (also ↑ ↓)"),
    ]

    def __init__(self, left: Key, right: Key) -> None:
        super().__init__()
        self.left, self.right = left, right
        self.rows: list[DiffRow] = []
        self.shown: list[DiffRow] = []
        self.only_differences = True
        self.notes: list[str] = []

    def name_of(self, key: Key) -> str:
        summary = self.host.monitor.summary(key)
        return experiment_label(summary) if summary else f"#{key[1]}"

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="◆")
        yield Static(id="diff-title")
        table: DataTable[Text] = DataTable(id="diff-table", cursor_type="row", zebra_stripes=True)
        yield table
        yield Static(id="diff-detail")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.load_diff()

    def on_resize(self) -> None:
        if self.rows:
            self.render_rows()

    def column_widths(self, keys: list[str]) -> tuple[int, int]:
        """The key column and each value column, so that both experiments fit side by side in
        the table's width (what is cut is shown whole below the table for the cursor's row)."""
        table = self.query_one(DataTable)
        padding = 2 * table.cell_padding
        room = max(0, table.size.width - 1 - 1 - 4 * padding)  # mark column, scrollbar
        longest = max(map(len, keys), default=3)
        key = max(3, min(longest, room * 2 // 5))
        return key, max(4, (room - key) // 2)

    def load_diff(self) -> None:
        databases = self.host.monitor.databases
        sides = [
            (self.name_of(key), databases.get(key[0]), key[1]) for key in (self.left, self.right)
        ]
        self.read_diff(sides)

    @read_worker("diff", "read configs")
    def read_diff(self, sides: list[tuple[str, MetricsDatabase | None, int]]) -> None:
        """`sides`: each experiment's name, database and id."""
        views = []
        notes = []
        for name, database, exp_id in sides:
            view = database.config(exp_id) if database else ConfigView("", error="no database")
            if view.error:
                notes.append(f"{name}: {view.error}; compared as empty")
            views.append(view.data if view.ok else {})
        rows = diff_configs(views[0], views[1])
        reply(self, DiffRead(rows, notes))

    @on(DiffRead)
    def show_diff(self, message: DiffRead) -> None:
        self.rows, self.notes = message.rows, message.notes
        self.render_rows()

    def render_rows(self) -> None:
        table = self.query_one(DataTable)
        was = self.shown[table.cursor_row].key if 0 <= table.cursor_row < len(self.shown) else None
        table.clear(columns=True)
        shown = [r for r in self.rows if not self.only_differences or r.kind != "same"]
        # The cursor stays on its key (when shown), or else near where it was.
        cursor = next((i for i, r in enumerate(shown) if r.key == was), table.cursor_row)
        keys = [clean_text(row.key, 120) for row in shown]
        key_width, value_width = self.column_widths(keys)
        table.add_column(" ", key="mark", width=1)
        table.add_column("key", key="key", width=key_width)
        for name, column in (
            (self.name_of(self.left), "left"),
            (self.name_of(self.right), "right"),
        ):
            table.add_column(cell(name, "bold"), key=column, width=value_width)
        self.shown = shown
        for row, key in zip(shown, keys, strict=True):
            mark, style = MARKS.get(row.kind, ("?", ""))
            table.add_row(
                Text(mark, style=style),
                cell(tail_of(key, key_width), "bold" if row.kind != "same" else ""),
                cell("" if row.kind == "added" else format_value(row.left)),
                cell("" if row.kind == "removed" else format_value(row.right)),
            )
        if shown:
            table.move_cursor(row=min(max(cursor, 0), len(shown) - 1))
        counts = {kind: sum(r.kind == kind for r in self.rows) for kind in MARKS}
        title = Text(no_wrap=True, overflow="ellipsis")
        title.append(f" {counts['changed']} changed", style="yellow")
        title.append(f" · {counts['added']} only right", style="green")
        title.append(f" · {counts['removed']} only left", style="red")
        title.append(f" · {counts['same']} same", style="dim")
        title.append(
            "   showing " + ("differences" if self.only_differences else "all keys") + " (a)"
        )
        for note in self.notes:
            title.append("\n " + clean_text(note, 200), style="bold red")
        if not shown:
            title.append("\n the two configs are identical", style="bold green")
        self.query_one("#diff-title", Static).update(title)

    @on(DataTable.RowHighlighted)
    def show_detail(self, event: DataTable.RowHighlighted) -> None:
        """The cursor's row whole: its key and both values, however long."""
        detail = Text()
        if 0 <= event.cursor_row < len(self.shown):
            row = self.shown[event.cursor_row]
            detail.append(clean_text(row.key, 400), style="bold")
            for name, side, absent in (
                (self.name_of(self.left), row.left, row.kind == "added"),
                (self.name_of(self.right), row.right, row.kind == "removed"),
            ):
                detail.append(f"\n {name}: ", style="dim")
                detail.append("(absent)" if absent else format_value(side, 400))
        self.query_one("#diff-detail", Static).update(detail)

    def action_toggle_all(self) -> None:
        self.only_differences = not self.only_differences
        self.render_rows()

    def action_down(self) -> None:
        self.query_one(DataTable).action_cursor_down()

    def action_up(self) -> None:
        self.query_one(DataTable).action_cursor_up()

    def action_back(self) -> None:
        self.dismiss()
