"""Desktop notifications through the terminal (`--notify`): the sequences, what database text
can do to them, and what the app writes (through its driver, and to a real pseudo-terminal)."""

from __future__ import annotations

import re

import pytest

from velora_tui.report.notify import (
    BODY_LIMIT,
    choose,
    notification_text,
    sequence,
)

HOSTILE = [
    "Evil\x1b]777;notify;pwned;gotcha\x07",  # a sequence of its own
    "a;b;c",  # extra fields
    "Bell\x07Ring",
    "ST\x1b\\end",
    "C1\x9d0;title\x9c",  # 8-bit OSC and ST
    "nul\x00and\nnewline\rcr\ttab",
    "\x1b[31mred\x1b[0m",
    "9;4;1;50",  # ConEmu's OSC 9 progress command
    "x" * 10_000,
    b"\x1b]9;bytes\x07",
]

OSC = re.compile(r"\x1b\](777|9);([^\x07\x1b]*)\x07")


@pytest.mark.parametrize("value", HOSTILE, ids=range(len(HOSTILE)))
def test_notification_text_has_nothing_that_ends_or_splits_a_sequence(value: object) -> None:
    text = notification_text(value, BODY_LIMIT)
    assert not re.search(r"[\x00-\x1f\x7f-\x9f;]", text)
    assert len(text) <= BODY_LIMIT


@pytest.mark.parametrize("value", HOSTILE, ids=range(len(HOSTILE)))
def test_a_hostile_message_makes_one_well_formed_sequence(value: object) -> None:
    body = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    both = sequence(f"velora-tui: {body}", body, "both")
    found = OSC.findall(both)
    assert [number for number, _ in found] == ["777", "9"]
    assert OSC.sub("", both) == ""  # nothing outside the two sequences
    _, payload = found[0]
    assert payload.count(";") == 2
    assert payload.startswith("notify;")
    assert not re.match(r"\d+;", found[1][1])


def test_methods_and_the_terminal_they_are_chosen_for() -> None:
    assert sequence("t", "b", "osc777") == "\x1b]777;notify;t;b\x07"
    assert sequence("t", "b", "osc9") == "\x1b]9;t: b\x07"
    assert sequence("t", "b", "bell") == ""
    assert choose({"TERM_PROGRAM": "iTerm.app"}) == "osc9"
    assert choose({"LC_TERMINAL": "iTerm2", "TERM": "xterm-256color"}) == "osc9"
    assert choose({"TERM": "xterm-kitty"}) == "osc9"
    assert choose({"TERM_PROGRAM": "ghostty"}) == "osc9"
    assert choose({"TERM_PROGRAM": "WezTerm"}) == "osc777"
    assert choose({"TERM": "foot"}) == "osc777"
    assert choose({}) == "osc777"
