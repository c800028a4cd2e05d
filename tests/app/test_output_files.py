"""The files the app writes into its output folder (the CSV export, the SVG screenshot) are
never opened through a symbolic link: names are predictable, and a link planted under one in a
shared folder would have the app overwrite whatever it points to."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import pytest

from tests.support.app import settle
from tests.support.databases import MakeDb
from velora_tui.tui.app import Settings, make_app

NOW = datetime(2026, 11, 23, 19, 45, 0)


@pytest.mark.ui
async def test_export_and_screenshot_refuse_a_planted_link(make_db: MakeDb, tmp_path: Path) -> None:
    db = make_db(tmp_path / "run" / "metrics.db", [5])
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    (out / "velora-run-exp1.csv").symlink_to(victim)
    (out / f"velora-tui-{NOW:%Y%m%d-%H%M%S}.svg").symlink_to(victim)
    app = make_app([db], Settings(live=False, clock=lambda: NOW, output_dir=out))
    async with app.run_test(size=(120, 40)):
        await settle(app)
        app.action_export_csv()
        await settle(app)
        app.action_save_svg()
        await settle(app)
        messages = [n.message for n in app._notifications]
    assert victim.read_text() == "keep me"
    assert sum("symbolic link" in m for m in messages) == 2, messages
    assert any(m.startswith("Export failed") for m in messages)
    assert any(m.startswith("Screenshot failed") for m in messages)
    assert sorted(os.listdir(out)) == sorted(
        ["velora-run-exp1.csv", f"velora-tui-{NOW:%Y%m%d-%H%M%S}.svg"]
    )
