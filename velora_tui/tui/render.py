"""Small pieces of display shared by the widgets: glyphs, sparkline text, safe Text cells."""

from __future__ import annotations

import math
from collections.abc import Sequence

from rich.text import Text

from velora_tui.data.cleaning import clean_text, format_number
from velora_tui.data.records import RunStatus

STATUS_GLYPHS: dict[RunStatus, tuple[str, str]] = {
    RunStatus.RUNNING: ("●", "bold green"),
    RunStatus.STALLED: ("◌", "bold yellow"),
    RunStatus.FINISHED: ("✔", "blue"),
    RunStatus.ENDED: ("■", "bold red"),
    RunStatus.EMPTY: ("○", "dim"),
}
_BLOCKS = "▁▂▃▄▅▆▇█"


def status_cell(status: RunStatus) -> Text:
    glyph, style = STATUS_GLYPHS[status]
    return Text(glyph, style=style)


def text_cell(value: object, limit: int = 60, style: str = "") -> Text:
    """Untrusted text as a cell: never parsed as markup, never a control sequence."""
    return Text(clean_text(value, limit), style=style, no_wrap=True, overflow="ellipsis")


def number_part(value: float | int | None, digits: int = 2) -> tuple[str, str]:
    """A number's text and style: inf and NaN stand out."""
    bad = isinstance(value, float) and not math.isfinite(value)
    return format_number(value, digits), "bold red" if bad else ""


def number_cell(value: float | int | None, digits: int = 2) -> Text:
    text, style = number_part(value, digits)
    return Text(text, style=style, justify="right")


def spark(values: Sequence[float], width: int = 16) -> str:
    """A block-character sparkline of the finite values, squeezed to `width` characters."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return ""
    if len(finite) > width:
        step = len(finite) / width
        finite = [
            sum(chunk) / len(chunk)
            for i in range(width)
            if (chunk := finite[int(i * step) : max(int((i + 1) * step), int(i * step) + 1)])
        ]
    low, high = min(finite), max(finite)
    span = high - low
    if span <= 0:
        return _BLOCKS[3] * len(finite)
    return "".join(_BLOCKS[min(7, int((v - low) / span * 8))] for v in finite)
