"""Desktop notifications through the terminal (`--notify`): the sequences, what database text
can do to them, and what the app writes (through its driver, and to a real pseudo-terminal)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.processes import Simulator, Terminal, child_env, python_command
from velora_tui.report.alerts import Alert
from velora_tui.report.notify import (
    TerminalNotifier,
    wrap_for_tmux,
)


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
