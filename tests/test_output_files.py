"""The files the app writes into its output folder (the CSV export, the SVG screenshot) are
never opened through a symbolic link: names are predictable, and a link planted under one in a
shared folder would have the app overwrite whatever it points to."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import pytest

from tests.support import MakeDb
from tests.test_app import settle
from velora_tui.app import Settings, make_app
from velora_tui.data.files import new_output

NOW = datetime(2026, 11, 23, 19, 45, 0)


def test_new_output_writes_a_whole_file_and_refuses_a_link(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    with new_output(target) as out:
        out.write("a,b\n")
    assert target.read_text() == "a,b\n"
    with new_output(target) as out:  # an existing file is replaced, as before
        out.write("c\n")
    assert target.read_text() == "c\n"
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    link = tmp_path / "link.csv"
    link.symlink_to(victim)
    with pytest.raises(OSError, match="symbolic link"), new_output(link) as out:
        out.write("overwritten")
    assert victim.read_text() == "keep me"
    with pytest.raises(RuntimeError, match="stopped"):
        write_then_fail(tmp_path / "failed.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.csv", "out.csv", "victim"]


def write_then_fail(path: Path) -> None:
    with new_output(path) as out:
        out.write("half")
        raise RuntimeError("stopped")


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
