"""Config diff of two experiments: flattened to dotted keys, side by side."""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Header, Static

from velora_tui.alerts import label
from velora_tui.data.config import ConfigView
from velora_tui.data.diff import DiffRow, diff_configs, format_value
from velora_tui.data.records import Key
from velora_tui.data.values import clean_text
from velora_tui.screens.base import VeloraScreen
from velora_tui.widgets.key_footer import KeyFooter

MARKS = {
    "changed": ("~", "bold yellow"),
    "added": ("+", "bold green"),
    "removed": ("-", "bold red"),
    "same": (" ", "dim"),
}


class DiffScreen(VeloraScreen):
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("a", "toggle_all", "All keys / differences"),
        Binding("j", "down", "Down", show=False),
        Binding("k", "up", "Up", show=False),
    ]

    def __init__(self, left: Key, right: Key) -> None:
        super().__init__()
        self.left, self.right = left, right
        self.rows: list[DiffRow] = []
        self.only_differences = True
        self.notes: list[str] = []

    def name_of(self, key: Key) -> str:
        summary = self.velora.monitor.summary(key)
        return label(summary) if summary else f"#{key[1]}"

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="◆")
        yield Static(id="diff-title")
        table: DataTable[Text] = DataTable(id="diff-table", cursor_type="row", zebra_stripes=True)
        yield table
        yield KeyFooter()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_column(" ", key="mark")
        table.add_column("key", key="key")
        table.add_column(self.name_of(self.left), key="left")
        table.add_column(self.name_of(self.right), key="right")
        self.load()

    @work(thread=True, exclusive=True, group="diff", exit_on_error=False)
    def load(self) -> None:
        views = []
        notes = []
        for key in (self.left, self.right):
            database = self.velora.monitor.databases.get(key[0])
            view = database.config(key[1]) if database else ConfigView("", error="no database")
            if view.error:
                notes.append(f"{self.name_of(key)}: {view.error}; compared as empty")
            views.append(view.data if view.ok else {})
        rows = diff_configs(views[0], views[1])
        self.app.call_from_thread(self.loaded, rows, notes)

    def loaded(self, rows: list[DiffRow], notes: list[str]) -> None:
        self.rows, self.notes = rows, notes
        self.render_rows()

    def render_rows(self) -> None:
        table = self.query_one(DataTable)
        table.clear()
        shown = [r for r in self.rows if not self.only_differences or r.kind != "same"]
        for row in shown:
            mark, style = MARKS.get(row.kind, ("?", ""))
            table.add_row(
                Text(mark, style=style),
                Text(clean_text(row.key, 120), style="bold" if row.kind != "same" else ""),
                Text("" if row.kind == "added" else format_value(row.left)),
                Text("" if row.kind == "removed" else format_value(row.right)),
            )
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

    def action_toggle_all(self) -> None:
        self.only_differences = not self.only_differences
        self.render_rows()

    def action_down(self) -> None:
        self.query_one(DataTable).action_cursor_down()

    def action_up(self) -> None:
        self.query_one(DataTable).action_cursor_up()

    def action_back(self) -> None:
        self.dismiss()
