"""The local copy of a remote database: made with velora's DDL, rows checked before they are
stored, never a file outside its folder (no ssh needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.reading import query
from velora_tui.data.monitor import Monitor
from velora_tui.remote.mirror import MAX_NAME, BadData, Mirror, digest

EXPERIMENT = [
    1,
    "NeuroFlow",
    "CartPole-v1",
    '{"train_params": {"n_episodes": 3}}',
    "2026-12-01 10:00:00",
]


def episode(row_id: int, **changes: Any) -> list[Any]:
    values: dict[str, Any] = {
        "id": row_id,
        "experiment_id": 1,
        "episode_num": row_id,
        "reward": 10.0 + row_id,
        "length": 10,
        "reward_moving_avg": 10.0,
        "reward_moving_std": 1.0,
        "actor_loss": -1.0,
        "critic_loss": 0.5,
        "entropy_loss": -0.2,
        "created_at": f"2026-12-01 10:00:{row_id:02d}",
    }
    values.update(changes)
    return list(values.values())


def started(folder: Path, entropy: bool = True) -> Mirror:
    mirror = Mirror(folder, "/remote/runs/metrics.db")
    mirror.start("1:2:3", entropy, reset=False)
    return mirror


def test_a_copy_is_read_by_the_monitor_like_any_database(tmp_path: Path) -> None:
    mirror = started(tmp_path)
    assert mirror.apply([EXPERIMENT], [episode(1), episode(2)]) == 2
    mirror.apply([], [episode(3, reward="inf text")])
    monitor = Monitor([tmp_path])
    try:
        monitor.refresh()
        monitor.scan_all()
        (summary,) = monitor.summaries()
        assert (summary.id, summary.agent, summary.episodes, summary.n_episodes) == (
            1,
            "NeuroFlow",
            3,
            3,
        )
        assert summary.nonfinite == 1
    finally:
        monitor.close()
    assert mirror.path == tmp_path / digest("/remote/runs/metrics.db") / "metrics.db"


def test_old_schema_copy_has_no_entropy_column(tmp_path: Path) -> None:
    mirror = started(tmp_path, entropy=False)
    mirror.apply([EXPERIMENT], [episode(1, entropy_loss=None)])
    columns = [row[1] for row in query(mirror.path, "PRAGMA table_info(episode)")]
    assert "entropy_loss" not in columns
    assert query(mirror.path, "SELECT id, reward FROM episode") == [(1, 11.0)]


@pytest.mark.parametrize(
    ("experiments", "episodes", "why"),
    [
        ([], [episode(1, id="1")], "episode id is not an integer"),
        ([], [episode(1, id=True)], "episode id is not an integer"),
        ([], [episode(1, experiment_id=1.5)], "experiment_id is not an integer"),
        ([], [episode(2), episode(2)], "is not above"),
        ([], [episode(1)[:5]], "not a list of 11"),
        ([], ["1,2,3"], "not a list of 11"),
        ([], [episode(1, reward={"x": 1})], "reward is not a number"),
        ([], [episode(1, reward=None)], "refuses"),
        ([[1, "a", "b"]], [], "not a list of 5"),
        ([[1, 2, "b", "{}", "t"]], [], "agent is not text"),
        ([[0, "a", "b", "{}", "t"]], [], "is not above 0"),
    ],
)
def test_rows_that_do_not_fit_are_refused_and_nothing_is_stored(
    tmp_path: Path, experiments: list[Any], episodes: list[Any], why: str
) -> None:
    mirror = started(tmp_path)
    with pytest.raises(BadData, match=why):
        mirror.apply(experiments, episodes)
    assert query(mirror.path, "SELECT count(*) FROM episode") == [(0,)]
    assert mirror.position is not None
    assert mirror.position.last_episode == 0


def test_texts_are_capped_and_nan_kept_as_text(tmp_path: Path) -> None:
    mirror = started(tmp_path)
    mirror.apply([[1, "x" * (MAX_NAME * 5), "env", "{}", "t"]], [episode(1, reward=float("nan"))])
    assert query(mirror.path, "SELECT length(agent) FROM experiment") == [(MAX_NAME,)]
    assert query(mirror.path, "SELECT reward FROM episode") == [("NaN",)]


def test_a_hostile_remote_path_never_decides_where_the_copy_is(tmp_path: Path) -> None:
    folder = tmp_path / "source"
    folder.mkdir()
    for hostile in ("../../../etc/passwd", "/x/\x00y", "a/../../b", "\x1b]0;x\x07"):
        mirror = Mirror(folder, hostile)
        mirror.start("1:1:1", True, reset=False)
        assert mirror.path.parent.parent == folder
        assert mirror.path.parent.name == digest(hostile)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["source"]


def test_resume_and_reset(tmp_path: Path) -> None:
    mirror = started(tmp_path)
    mirror.apply([EXPERIMENT], [episode(1), episode(2)])
    mirror.close()
    (again,) = Mirror.existing(tmp_path)
    assert again.position is not None
    assert (again.position.ident, again.position.last_episode) == ("1:2:3", 2)
    again.start("1:2:3", True, reset=False)  # the same remote file: kept
    assert query(again.path, "SELECT count(*) FROM episode") == [(2,)]
    inode = again.path.stat().st_ino
    again.start("1:9:9", True, reset=False)  # another file in its place: a new copy
    assert query(again.path, "SELECT count(*) FROM episode") == [(0,)]
    assert again.path.stat().st_ino != inode
    with pytest.raises(BadData):
        again.apply([], [episode(0)])


def test_cache_info_and_clear(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.support.cli import run_cli

    cache = tmp_path / "cache"
    monkeypatch.setenv("VELORA_TUI_CACHE", str(cache))
    folder = cache / "remote" / "source"
    folder.mkdir(parents=True)
    started(folder).apply([EXPERIMENT], [episode(1)])
    info = run_cli("cache", "info")
    assert info.code == 0
    assert info.out.startswith(f"{cache / 'remote'}  ")
    assert info.out.rstrip().endswith(" MB")
    cleared = run_cli("cache", "clear")
    assert cleared.code == 0
    assert "removed" in cleared.err
    assert not (cache / "remote").exists()
