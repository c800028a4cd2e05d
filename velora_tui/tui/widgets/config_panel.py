"""An experiment's config: a collapsible JSON tree with search, or the raw text and its error."""

from __future__ import annotations

import json
from collections import deque
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Input, Static, Tree
from textual.widgets.tree import TreeNode

from velora_tui.data.cleaning import clean_text
from velora_tui.data.config import ConfigView

MAX_NODES = 5_000
RAW_LIMIT = 200_000
VALUE_STYLES = {str: "green", bool: "magenta", type(None): "dim", int: "cyan", float: "cyan"}


def leaf_label(key: str, value: Any) -> Text:
    shown = json.dumps(value, ensure_ascii=False) if not isinstance(value, float) else repr(value)
    return Text.assemble(
        (clean_text(key, 80), "bold"),
        ": ",
        (clean_text(shown, 200), VALUE_STYLES.get(type(value), "")),
    )


def branch_label(key: str, value: dict[str, Any] | list[Any]) -> Text:
    size = f"{{{len(value)} keys}}" if isinstance(value, dict) else f"[{len(value)} items]"
    return Text.assemble((clean_text(key, 80), "bold"), " ", (size, "dim"))


class ConfigSearch(Input):
    """The config's search box: Esc goes back to the tree (not out of the experiment)."""

    BINDINGS = [
        Binding("enter", "submit", "Next match"),
        Binding("escape", "leave", "Back to the tree"),
    ]

    def action_leave(self) -> None:
        self.screen.query_one("#config-tree", Tree).focus()


class ConfigPanel(Vertical):
    DEFAULT_CSS = """
    ConfigPanel #config-search { margin: 0 0 0 0; }
    ConfigPanel #config-error { color: $error; padding: 0 1; }
    ConfigPanel Tree { height: 1fr; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.searchable: list[tuple[TreeNode[str], str]] = []
        self.match_at = -1

    def compose(self) -> ComposeResult:
        yield ConfigSearch(
            placeholder="/ to search the config (Enter: next match, Esc: back to the tree)",
            id="config-search",
        )
        yield Static(id="config-error")
        yield Tree[str]("config", id="config-tree")
        with VerticalScroll(id="config-raw"):
            yield Static(id="config-text")

    def focus_tree(self) -> None:
        self.query_one("#config-tree", Tree).focus()

    def focus_search(self) -> None:
        self.query_one(ConfigSearch).focus()

    def on_mount(self) -> None:
        self.query_one("#config-raw").display = False
        self.query_one("#config-error").display = False

    def show(self, view: ConfigView) -> None:
        tree = self.query_one("#config-tree", Tree)
        error = self.query_one("#config-error", Static)
        raw = self.query_one("#config-raw")
        if view.error is not None or not isinstance(view.data, dict | list):
            message = view.error or "config is not a JSON object"
            error.update(Text(clean_text(message, 300)))
            error.display = True
            tree.display = False
            raw.display = True
            full = view.text if view.error is not None else json.dumps(view.data)
            text = full[:RAW_LIMIT]
            if len(full) > RAW_LIMIT:
                text += f"\n… ({len(full) - RAW_LIMIT:,} more characters not shown)"
            self.query_one("#config-text", Static).update(Text(text))
            return
        error.display = False
        raw.display = False
        tree.display = True
        self.build(tree, view.data)

    def build(self, tree: Tree[str], data: dict[str, Any] | list[Any]) -> None:
        tree.clear()
        tree.root.set_label(branch_label("config", data))
        self.match_at = -1
        # Breadth first, so a huge config keeps its top levels when the node budget runs out.
        queue: deque[tuple[TreeNode[str], Any, int]] = deque([(tree.root, data, 0)])
        count = 0
        while queue:
            node, value, depth = queue.popleft()
            items = list(value.items()) if isinstance(value, dict) else list(enumerate(value))
            for key, child in items:
                if count >= MAX_NODES:
                    node.add_leaf(Text(f"… config truncated at {MAX_NODES:,} entries", "dim"))
                    queue.clear()
                    break
                count += 1
                name = str(key)
                if isinstance(child, dict | list) and child:
                    branch = node.add(branch_label(name, child), name.lower(), expand=depth < 1)
                    queue.append((branch, child, depth + 1))
                else:
                    searchable = f"{name} {json.dumps(child)}".lower()
                    node.add_leaf(leaf_label(name, child), searchable)
        tree.root.expand()
        # Search in display order: depth first, children in order.
        self.searchable = []
        stack: list[TreeNode[str]] = list(reversed(tree.root.children))
        while stack:
            node = stack.pop()
            self.searchable.append((node, node.data or ""))
            stack.extend(reversed(node.children))

    @on(Input.Submitted, "#config-search")
    def next_match(self, event: Input.Submitted) -> None:
        needle = event.value.strip().lower()
        if not needle or not self.searchable:
            return
        total = len(self.searchable)
        for step in range(1, total + 1):
            index = (self.match_at + step) % total
            node, text = self.searchable[index]
            if needle in text:
                self.match_at = index
                parent = node.parent
                while parent is not None:
                    parent.expand()
                    parent = parent.parent
                tree = self.query_one("#config-tree", Tree)
                tree.move_cursor(node)
                tree.scroll_to_node(node)
                hits = sum(needle in t for _, t in self.searchable)
                self.notify(
                    f"match {self.matches_before(needle, index)} of {hits}", timeout=2, markup=False
                )
                return
        self.notify(
            f"“{clean_text(needle, 40)}” is not in the config", severity="warning", markup=False
        )

    def matches_before(self, needle: str, index: int) -> int:
        return sum(needle in t for _, t in self.searchable[: index + 1])
