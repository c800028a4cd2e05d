"""The app on sources of other hosts, through a real sshd: their experiments in the list,
named with their host, each host's state in the status line, new episodes live, and a host
that goes away shown as unreachable with the last data kept on screen."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from rich.text import Text

from tests.support.app import cell_texts, settle, table
from tests.support.databases import SAMPLE_DB, add_episode
from tests.support.sshd import SshServer
from tests.support.waiting import until
from velora_tui.tui.app import Settings, make_app
from velora_tui.tui.widgets.status_bar import StatusBar

pytestmark = pytest.mark.ui


def status_text(app: object) -> str:
    bar = app.screen.query_one(StatusBar)  # type: ignore[attr-defined]
    rendered = bar.render_line(0).text
    return str(rendered)


def idents(app: object) -> list[str]:
    grid = table(app)  # type: ignore[arg-type]
    cells = [grid.get_row_at(row)[1] for row in range(grid.row_count)]
    return [cell.plain if isinstance(cell, Text) else str(cell) for cell in cells]


async def test_remote_and_local_sources_in_the_app(sshd: SshServer, tmp_path: Path) -> None:
    remote = tmp_path / "remote" / "gpu"
    remote.mkdir(parents=True)
    shutil.copyfile(SAMPLE_DB, remote / "metrics.db")
    local = tmp_path / "here"
    local.mkdir()
    shutil.copyfile(SAMPLE_DB, local / "metrics.db")
    app = make_app([f"vt:{remote}", local / "metrics.db"], Settings())
    async with app.run_test(size=(120, 30)) as pilot:
        await until(lambda: len(idents(app)) == 6, timeout=30)
        assert sorted(idents(app)) == sorted(
            [f"vt:gpu/{n}" for n in (1, 2, 3)] + [f"here/{n}" for n in (1, 2, 3)]
        )
        await until(lambda: "vt connected" in status_text(app), timeout=10)
        add_episode(remote / "metrics.db", 3, reward=999.0)
        await until(lambda: "999.00" in cell_texts(app), timeout=20)  # live, on screen
        sshd.stop()
        await until(lambda: "vt unreachable since" in status_text(app), timeout=30)
        assert len(idents(app)) == 6  # the last data stays on screen
        await settle(app)
        await pilot.press("q")
