"""A big remote file on a slow link (the `vt-slow` host: the test sshd behind a relay that passes
100 KB/s and counts the bytes): copying the file whole would take minutes, yet `ls`, the app's
first rows and an experiment's charts come in seconds, because the host answers the questions
asked and nothing else crosses the link. A connection dropped in the middle of an answer is a
state, and the next connection answers in full."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from tests.support.cli import run_cli
from tests.support.databases import build_big_velora_db
from tests.support.sshd import SshServer
from tests.support.waiting import wait_for
from velora_tui.data.records import SourceState
from velora_tui.data.series import SeriesReader
from velora_tui.remote.sources import open_sources

RATE = 100_000  # bytes a second, each way
EXPERIMENTS, EPISODES = 40, 2_500  # 100,000 episodes, ~12 MB: 2 min to copy at RATE


@pytest.fixture
def slow(sshd: SshServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The relay's folder of byte counts; the link is slow from now on."""
    counts = tmp_path / "relay"
    counts.mkdir()
    monkeypatch.setenv("VELORA_TUI_RELAY_RATE", str(RATE))
    monkeypatch.setenv("VELORA_TUI_RELAY_DIR", str(counts))
    return counts


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("big") / "metrics.db"
    build_big_velora_db(db, EXPERIMENTS, EPISODES, groups=(1, 1, 1, 1, 1, 5) * 4)
    return db


def wire(counts: Path) -> int:
    """Bytes that came from the host through the relay so far."""
    return sum(int(path.read_text().split()[0]) for path in counts.glob("relay-*"))


def listing(text: str) -> list[dict[str, object]]:
    rows = json.loads(text)
    return [{k: v for k, v in row.items() if k not in ("db", "host", "host_state")} for row in rows]


def test_ls_of_a_big_file_on_a_slow_link(slow: Path, big_file: Path) -> None:
    local = run_cli("ls", "--json", big_file)
    remote = run_cli("ls", "--json", f"vt-slow:{big_file}")
    assert remote.code == 0, remote.err
    assert listing(remote.out) == listing(local.out)
    size = big_file.stat().st_size
    came = wire(slow)
    print(f"\nls of {size / 1e6:.1f} MB through {RATE / 1e3:.0f} KB/s: {came / 1e3:.0f} kB")
    # Each run's summary, and its health from its newest 300 rows (docs/health.md): a bounded
    # amount per run shown, whatever the file's size (34 kB without the health).
    assert 0 < came < size / 10


def test_charts_and_first_rows_of_a_big_file_on_a_slow_link(slow: Path, big_file: Path) -> None:
    monitor, remotes = open_sources([f"vt-slow:{big_file}"])
    assert remotes is not None
    try:
        monitor.refresh()
        (database,) = monitor.databases.values()
        assert len(database.summaries) == EXPERIMENTS
        # Pending, never false, until added up: the estimate is from the first and last rows.
        assert all(s.episodes == EPISODES for s in database.summaries.values())
        series = SeriesReader(database, 3).read()
        assert series.complete
        assert len(series) > 0
        came = wire(slow)
        assert 0 < came < big_file.stat().st_size / 20
    finally:
        monitor.close()


def test_a_connection_dropped_in_the_middle_of_an_answer(
    sshd: SshServer, slow: Path, big_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The newest 20,000 episodes (~3 MB: half a minute at the relay's rate): the connection is
    dropped while they come. The read ends at once in a state (not a hang, not a short list);
    once the host is back, the same read answers in full."""
    monitor, remotes = open_sources([f"vt-slow:{big_file}"])
    assert remotes is not None
    try:
        monitor.refresh()
        (database,) = monitor.databases.values()
        (link,) = remotes.links
        found: list[int] = []
        done = threading.Event()

        def read() -> None:
            found.append(len(database.latest_episodes(None, 20_000)))
            done.set()

        threading.Thread(target=read, daemon=True).start()
        wait_for(lambda: wire(slow) > 300_000, 30, what="the answer under way")
        before = link.status.since
        assert sshd.drop_connections() > 0
        monkeypatch.setenv("VELORA_TUI_RELAY_RATE", "0")  # the next connection's relay: fast
        assert done.wait(10)
        assert found == [0]
        assert database.status.state is SourceState.NOT_RESPONDING
        wait_for(
            lambda: link.status.state == "connected" and link.status.since != before,
            30,
            what="connected again",
        )
        monitor.refresh()
        rows = database.latest_episodes(None, 20_000)
        assert [row.id for row in rows] == list(
            range(EXPERIMENTS * EPISODES - 20_000 + 1, EXPERIMENTS * EPISODES + 1)
        )
    finally:
        monitor.close()
