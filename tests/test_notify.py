"""Desktop notifications through the terminal (`--notify`): the sequences, what database text
can do to them, and what the app writes (through its driver, and to a real pseudo-terminal)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.support import MakeDb, RunSpec, Simulator, Terminal, child_env, python_command
from velora_tui.report.alerts import Alert
from velora_tui.report.notify import (
    BODY_LIMIT,
    TerminalNotifier,
    choose,
    notification_text,
    sequence,
    wrap_for_tmux,
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


def test_tmux_gets_them_wrapped_in_its_passthrough_and_the_bell_plain() -> None:
    assert wrap_for_tmux("\x1b]9;hi\x07") == "\x1bPtmux;\x1b\x1b]9;hi\x07\x1b\\"
    alert = Alert((Path("/x/metrics.db"), 1), "finished", "information", "#1 A · B finished")
    inside = TerminalNotifier("osc777", {"TMUX": "/tmp/tmux-1000/default,1,0"})
    out = inside.escape([alert])
    assert out == (
        "\x1bPtmux;\x1b\x1b]777;notify;velora-tui: finished;#1 A · B finished\x07\x1b\\\x07"
    )
    assert TerminalNotifier("bell", {}).escape([alert]) == "\x07"
    assert TerminalNotifier("auto", {}).escape([]) == ""


def test_many_alerts_at_once_make_one_notification() -> None:
    alerts = [
        Alert((Path("/x/metrics.db"), n), "finished", "information", f"#{n} finished")
        for n in range(1, 8)
    ]
    out = TerminalNotifier("osc777", {}).escape(alerts)
    assert out == "\x1b]777;notify;velora-tui: 7 alerts;#1 finished (and 6 more)\x07\x07"
    two = TerminalNotifier("osc9", {}).escape(alerts[:2])
    assert two.count("\x1b]9;") == 2
    assert two.endswith("\x07\x07")


# -- in the app ---------------------------------------------------------------------------------


@pytest.mark.ui
async def test_the_app_writes_the_notification_through_its_driver(
    make_db: MakeDb, tmp_path: Path
) -> None:
    from velora_tui.tui.app import Settings, make_app

    start = datetime(2026, 11, 24, 12, 0, 0)
    agent = "Evil;\x1b]777;notify;pwned;x\x07\x9d0;t\x9c\x1b[2J"
    runs = [RunSpec(planned=100, write=20, agent=agent)]
    db = make_db(tmp_path / "metrics.db", runs, start=start, interval=timedelta(seconds=1))
    now = [start + timedelta(seconds=22)]
    app = make_app([db], Settings(live=False, clock=lambda: now[0], notify="both"))
    written: list[str] = []
    async with app.run_test(size=(120, 40)) as pilot:
        driver = app._driver
        assert driver is not None
        real_write = driver.write

        def capture(data: str) -> None:
            written.append(data)
            real_write(data)

        driver.write = capture  # type: ignore[method-assign]
        await pilot.pause(0.5)
        assert app.monitor.summaries()[0].status(now[0]).value == "running"
        assert "".join(written).count("\x07") == 0
        now[0] += timedelta(minutes=2)
        app.publish([], heartbeat=True)
        app.publish([], heartbeat=True)
        await pilot.pause()
        out = "".join(written)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Test desktop notification" in titles
        app.action_test_notification()
        test = "".join(written)[len(out) :]
        assert test.startswith("\x1b]777;notify;velora-tui;desktop notifications work")
        assert test.endswith("\x07\x07")
    found = OSC.findall(out)
    assert [number for number, _ in found] == ["777", "9"]
    title, body = found[0][1].split(";")[1:]
    assert title == "velora-tui: stalled"
    assert body.startswith("#1 Evil, ")
    assert "stalled: no episode for 2 min" in body
    assert "pwned" not in title
    assert "\x9d" not in out
    assert "\x1b[2J" not in out
    assert OSC.sub("", out) == "\x07"  # and the bell, once


@pytest.mark.ui
def test_notify_reaches_a_real_terminal(tmp_path: Path, simulator: Simulator) -> None:
    """The app as its own process on a pseudo-terminal: a run that finishes while it watches
    arrives as the escape sequence and the bell, between frames."""
    db = tmp_path / "metrics.db"
    env = {k: v for k, v in child_env(plain=False).items() if k not in ("TMUX", "STY")}
    terminal = Terminal(python_command(db, "--notify-with", "osc777"), env=env)
    try:
        assert terminal.wait_for("waiting", 0, timeout=20)
        simulator(db, episodes=60, rate=30)
        expected = "\x1b]777;notify;velora-tui: finished;#1 NeuroFlow · CartPole-v1 finished"
        assert terminal.wait_for(expected, 0, timeout=30)
        offset = terminal.find(expected)
        with terminal.lock:
            after = bytes(terminal.output[offset:]).decode("utf-8", "replace")
        assert after.index("\x07") == after.index(" planned episodes") + len(" planned episodes")
    finally:
        terminal.close()
