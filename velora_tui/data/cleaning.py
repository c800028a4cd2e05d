"""Turning untrusted database values into safe Python values.

SQLite stores whatever it is given: a REAL column may hold text, a blob or inf, a DATETIME
column may hold anything. Nothing here raises.
"""

from __future__ import annotations

import math
import re
from datetime import datetime

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_CONTROL_WITH_NEWLINES = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_ESCAPE_SEQUENCE = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)?|.)?")
# Unicode's format characters (category Cf, Unicode 15) but the joiners U+200C and U+200D,
# which scripts and emoji need: the bidi controls (U+061C, U+200E-200F, U+202A-202E,
# U+2066-2069) reorder what the terminal shows (`txt.exe` shows as `exe.txt`), the others are
# invisible (zero-width space, BOM, soft hyphen, tags) and hide a difference between names.
# Listed rather than looked up: scanning every code point at import would cost start-up.
_FORMAT = re.compile(
    "[\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u180e\u200b\u200e\u200f"
    "\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\U000110bd\U000110cd"
    "\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001"
    "\U000e0020-\U000e007f]"
)
# The line and paragraph separators (categories Zl, Zp): a line break, in a one-line text a space.
_SEPARATOR = re.compile("[\u2028\u2029]")


def as_float(value: object) -> float:
    """A float for any value: NaN when it is not a number."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        try:
            return float(value)
        except OverflowError:
            return math.inf if value > 0 else -math.inf
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return math.nan
    return math.nan


def as_int(value: object) -> int | None:
    """An int for integral values (or numeric text), else None."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    number = as_float(value)
    if math.isfinite(number) and number == int(number):
        return int(number)
    return None


def parse_timestamp(value: object) -> datetime | None:
    """Velora's naive local `created_at` text (or anything else) as a naive datetime."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=None) if value.tzinfo else value
    if isinstance(value, bytes):
        try:
            value = value.decode()
        except UnicodeDecodeError:
            return None
    if not isinstance(value, str) or not 10 <= len(value) <= 40:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed
    try:  # "0001-01-01 00:00+01:00" is out of range once converted
        return parsed.astimezone().replace(tzinfo=None)
    except (OverflowError, ValueError, OSError):
        return None


def clean_text(value: object, limit: int = 200) -> str:
    """Text safe for a terminal, one line: escape sequences and format characters (bidi
    controls, zero-width) removed, control characters and line separators made spaces."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    text = value if isinstance(value, str) else str(value)
    if len(text) > limit * 4:
        text = text[: limit * 4]
    text = _ESCAPE_SEQUENCE.sub("", text)
    text = _CONTROL_WITH_NEWLINES.sub(" ", text)
    if not text.isascii():
        text = _SEPARATOR.sub(" ", _FORMAT.sub("", text))
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def clean_block(text: str) -> str:
    """Multi-line text (a config) safe for a terminal: keeps newlines and tabs only (line and
    paragraph separators become newlines)."""
    text = _CONTROL.sub("", _ESCAPE_SEQUENCE.sub("", text))
    if not text.isascii():
        text = _SEPARATOR.sub("\n", _FORMAT.sub("", text))
    return text.replace("\t", "    ")


def format_number(value: float | int | None, digits: int = 2) -> str:
    """Short human form of a number, including 'nan', 'inf' and '-'. Never raises."""
    if value is None:
        return "-"
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value != 0 and (abs(value) >= 1e6 or abs(value) < 10 ** (-digits)):
        return f"{value:.{digits}e}"
    return f"{value:.{digits}f}"
