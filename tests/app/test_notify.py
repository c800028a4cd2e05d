"""Desktop notifications through the terminal (`--notify`): the sequences, what database text
can do to them, and what the app writes (through its driver, and to a real pseudo-terminal)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.support.databases import MakeDb, RunSpec

OSC = re.compile(r"\x1b\](777|9);([^\x07\x1b]*)\x07")


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
