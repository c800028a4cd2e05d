"""Two experiments' configs side by side: every dotted key, and whether it differs.

No Textual here: the command line (`velora-tui diff`) and the app share it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from velora_tui.data.cleaning import clean_text
from velora_tui.data.config import flatten
from velora_tui.data.records import json_number

SAME = "same"
CHANGED = "changed"
ADDED = "added"  # only in the right config
REMOVED = "removed"  # only in the left config
MARKERS = {SAME: "", CHANGED: "~", ADDED: "+", REMOVED: "-"}


@dataclass(frozen=True, slots=True)
class DiffRow:
    """One dotted key. `left` is None when the kind is "added", `right` when "removed"."""

    key: str
    left: Any
    right: Any
    kind: str

    @property
    def marker(self) -> str:
        """The table's marker: ~ changed, + added, - removed, nothing when the same."""
        return MARKERS.get(self.kind, "")

    def to_json(self) -> dict[str, Any]:
        """Strict JSON: non-finite numbers as the strings "nan", "inf", "-inf"."""
        return {
            "key": self.key,
            "left": _json_safe(self.left),
            "right": _json_safe(self.right),
            "kind": self.kind,
        }


def diff_configs(left: Any, right: Any) -> list[DiffRow]:
    """Both configs flattened to dotted keys (`config.flatten`: unambiguous, quoted where a key
    could be read as a path), in the left config's order, then keys only in right.

    Any JSON value works: a dict, a list (keys "[0]", "[1]", ...), a scalar or null (key "(root)").
    An empty dict has no keys. Pass `{}` for a config that did not parse.
    """
    flat_left, flat_right = _flat(left), _flat(right)
    rows: list[DiffRow] = []
    for key, value in flat_left.items():
        if key not in flat_right:
            rows.append(DiffRow(key, value, None, REMOVED))
            continue
        other = flat_right[key]
        rows.append(DiffRow(key, value, other, SAME if _same(value, other) else CHANGED))
    rows.extend(
        DiffRow(key, None, value, ADDED)
        for key, value in flat_right.items()
        if key not in flat_left
    )
    return rows


def format_value(value: Any, limit: int = 80) -> str:
    """A short, terminal-safe JSON form: `64`, `"CartPole-v1"`, `null`, `{}`. Never raises."""
    if isinstance(value, str) and len(value) > limit * 4:
        value = value[: limit * 4]
    try:
        text = json.dumps(value, ensure_ascii=False, default=repr)
    except (TypeError, ValueError, RecursionError):
        try:
            text = repr(value)
        except Exception:
            text = f"<{type(value).__name__}>"
    return clean_text(text, limit)


def _flat(config: Any) -> dict[str, Any]:
    if isinstance(config, dict) and not config:
        return {}
    return flatten(config)


def _same(left: Any, right: Any) -> bool:
    """Equal as JSON values: 1, 1.0 and true differ; NaN equals NaN."""
    if type(left) is not type(right):
        return False
    if isinstance(left, float) and math.isnan(left):
        return math.isnan(right)
    try:
        return bool(left == right)
    except Exception:
        return False


def _json_safe(value: Any) -> Any:
    if isinstance(value, float):
        return json_number(value)
    if value is None or isinstance(value, str | int | bool):
        return value
    if isinstance(value, dict | list) and not value:
        return value
    return format_value(value)
