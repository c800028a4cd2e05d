"""velora_tui.data.cleaning: untrusted database values made safe; nothing here may raise."""

from __future__ import annotations

import math
import sys
import unicodedata
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from velora_tui.data.cleaning import (
    as_float,
    as_int,
    clean_block,
    clean_text,
    format_number,
    parse_timestamp,
)

# -- as_float / as_int -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1, 1.0),
        (-2.5, -2.5),
        (True, 1.0),
        ("3.5", 3.5),
        ("  7 ", 7.0),
        ("1e999", math.inf),
        ("-inf", -math.inf),
        (10**400, math.inf),
        (-(10**400), -math.inf),
        (math.inf, math.inf),
    ],
)
def test_as_float_numbers(value: object, expected: float) -> None:
    assert as_float(value) == expected


@pytest.mark.parametrize(
    "value",
    ["", "abc", "1,5", "\x00", None, b"1.0", b"\xff", [], {}, object(), Decimal("1.5"), "nan"],
)
def test_as_float_non_numbers_are_nan(value: object) -> None:
    assert math.isnan(as_float(value))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (5, 5),
        (True, 1),
        (5.0, 5),
        ("12", 12),
        (" 12.0 ", 12),
        (5.5, None),
        ("abc", None),
        (None, None),
        (math.inf, None),
        (math.nan, None),
        ("inf", None),
        (b"3", None),
        ([3], None),
    ],
)
def test_as_int(value: object, expected: int | None) -> None:
    assert as_int(value) == expected


# -- parse_timestamp ---------------------------------------------------------------------------


def test_parse_timestamp_velora_text() -> None:
    parsed = parse_timestamp("2026-11-23 19:41:17.787242")
    assert parsed == datetime(2026, 11, 23, 19, 41, 17, 787242)
    assert parsed is not None
    assert parsed.tzinfo is None


def test_parse_timestamp_variants() -> None:
    assert parse_timestamp("2026-11-23") == datetime(2026, 11, 23)
    assert parse_timestamp("2026-11-23T19:41:17") == datetime(2026, 11, 23, 19, 41, 17)
    assert parse_timestamp(b"2026-11-23 19:41:17") == datetime(2026, 11, 23, 19, 41, 17)
    naive = datetime(2026, 1, 2, 3, 4, 5)
    assert parse_timestamp(naive) is naive


def test_parse_timestamp_aware_becomes_naive_local() -> None:
    moment = datetime(2026, 11, 23, 19, 41, 17, tzinfo=UTC)
    expected = moment.astimezone().replace(tzinfo=None)
    assert parse_timestamp(moment) == moment.replace(tzinfo=None)
    assert parse_timestamp("2026-11-23 19:41:17+00:00") == expected
    plus_two = datetime(2026, 11, 23, 21, 41, 17, tzinfo=timezone(timedelta(hours=2)))
    assert parse_timestamp(plus_two.isoformat()) == expected


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "yesterday",
        "not a timestamp at all",
        "2026-13-45 99:99:99",
        "x" * 10_000,
        b"\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8\xf7\xf6",
        12345,
        1.5e9,
        math.inf,
        [],
    ],
)
def test_parse_timestamp_garbage_is_none(value: object) -> None:
    assert parse_timestamp(value) is None


# -- clean_text / clean_block ------------------------------------------------------------------


def test_clean_text_removes_escape_sequences() -> None:
    assert clean_text("\x1b[31mred\x1b[0m") == "red"
    assert clean_text("a\x1b]0;title\x07b") == "ab"
    assert clean_text("a\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\b") == "alinkb"
    assert clean_text("\x1b[2J\x1b[Hcleared") == "cleared"
    assert clean_text("tail\x1b") == "tail"


def test_clean_text_control_characters_become_spaces() -> None:
    assert clean_text("a\nb\rc\td\x00e\x7ff\x9bg") == "a b c d e f g"


def test_clean_text_removes_what_reorders_or_hides_text() -> None:
    """Bidi controls reorder what the terminal shows (`exe.txt` shown for `txt.exe`), line and
    paragraph separators break the line, zero-width characters hide differences."""
    assert clean_text("run\u202etxt.exe") == "runtxt.exe"
    assert clean_text("a\u2066b\u2069c\u200fd\u061ce\u202af") == "abcdef"
    assert clean_text("one\u2028two\u2029three") == "one two three"
    assert clean_text("zero\u200bwidth\ufeff\u00ad") == "zerowidth"
    assert (
        clean_text("café 日本 👩\u200d💻 \u0646\u200c\u0645")
        == "café 日本 👩\u200d💻 \u0646\u200c\u0645"
    )
    assert clean_block("a\u202eb\nc\u2028d\u2029e") == "ab\nc\nd\ne"


def test_every_format_control_and_separator_is_removed() -> None:
    """Every code point of categories Cc, Cf, Zl and Zp this Python knows, except the
    joiners that scripts and emoji need (U+200C, U+200D) and ESC (it starts a sequence)."""
    kept = {"\u200c", "\u200d", "\x1b"}  # ESC starts a sequence: tested above
    found = [
        chr(c)
        for c in range(sys.maxunicode + 1)
        if unicodedata.category(chr(c)) in ("Cc", "Cf", "Zl", "Zp") and chr(c) not in kept
    ]
    assert len(found) > 150
    text = "".join(f"{c}x" for c in found)
    assert clean_text(text, limit=10_000).replace(" ", "") == "x" * len(found)
    assert clean_block(text).replace("\n", "").replace("    ", "") == "x" * len(found)


def test_clean_text_keeps_markup_like_text_verbatim() -> None:
    # Escaping markup is the UI's job; the data layer keeps the text as it is.
    assert clean_text("[/bold][red]x") == "[/bold][red]x"


def test_clean_text_other_types_and_limit() -> None:
    assert clean_text(None) == ""
    assert clean_text(42) == "42"
    assert clean_text(b"caf\xc3\xa9 \xff") == "café \ufffd"
    long = clean_text("x" * 1000, limit=10)
    assert len(long) == 10
    assert long.endswith("…")
    assert clean_text("x" * 10, limit=10) == "x" * 10


def test_clean_block_keeps_lines() -> None:
    text = '{\n\t"a": "\x1b[1mb\x1b[0m\x07"\r\n}'
    assert clean_block(text) == '{\n    "a": "b"\n}'


# -- format_number -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "-"),
        (7, "7"),
        (0.0, "0.00"),
        (3.14159, "3.14"),
        (-2.5, "-2.50"),
        (math.nan, "nan"),
        (math.inf, "inf"),
        (-math.inf, "-inf"),
        (1e7, "1.00e+07"),
        (0.001, "1.00e-03"),
        (123456.0, "123456.00"),
    ],
)
def test_format_number(value: float | int | None, expected: str) -> None:
    assert format_number(value) == expected


def test_format_number_digits() -> None:
    assert format_number(0.12345, 3) == "0.123"
    assert format_number(0.0001, 3) == "1.000e-04"


# -- properties --------------------------------------------------------------------------------


@given(st.text())
def test_clean_text_never_leaves_control_characters(text: str) -> None:
    cleaned = clean_text(text)
    assert "\x1b" not in cleaned
    assert all(ord(c) >= 0x20 and not 0x7F <= ord(c) <= 0x9F for c in cleaned)


@given(st.text(), st.integers(min_value=1, max_value=300))
def test_clean_text_respects_limit(text: str, limit: int) -> None:
    assert len(clean_text(text, limit)) <= limit


@given(st.text())
def test_clean_block_keeps_only_newlines(text: str) -> None:
    cleaned = clean_block(text)
    assert "\x1b" not in cleaned
    assert all(c == "\n" or (ord(c) >= 0x20 and not 0x7F <= ord(c) <= 0x9F) for c in cleaned)


_ANYTHING = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**300, max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(),
    st.binary(),
    st.lists(st.integers(), max_size=3),
)


@given(_ANYTHING)
def test_as_float_never_raises(value: object) -> None:
    assert isinstance(as_float(value), float)


@given(_ANYTHING)
def test_as_int_never_raises(value: object) -> None:
    result = as_int(value)
    assert result is None or isinstance(result, int)


@given(_ANYTHING)
def test_parse_timestamp_never_raises(value: object) -> None:
    result = parse_timestamp(value)
    assert result is None or (isinstance(result, datetime) and result.tzinfo is None)


@given(st.one_of(st.none(), st.integers(), st.floats(allow_nan=True, allow_infinity=True)))
def test_format_number_never_raises(value: float | int | None) -> None:
    assert isinstance(format_number(value), str)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_as_float_round_trips_text(value: float) -> None:
    assert as_float(repr(value)) == value


@pytest.mark.parametrize("value", ["0001-01-01 00:00:00+01:00", "9999-12-31 23:59:59-01:00"])
def test_parse_timestamp_out_of_range_zone_is_none(value: str) -> None:
    # Converting these to local time leaves datetime's range: that must not raise.
    result = parse_timestamp(value)
    assert result is None or result.tzinfo is None


_OFFSETS = st.builds(
    timezone,
    st.timedeltas(
        min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23, minutes=59)
    ),
)


@given(st.datetimes(timezones=_OFFSETS))
def test_parse_timestamp_any_aware_text_never_raises(moment: datetime) -> None:
    result = parse_timestamp(moment.isoformat(sep=" "))
    assert result is None or result.tzinfo is None
