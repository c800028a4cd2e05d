"""Settings that last (report/user_settings.py): the path, the values and their sources, a
broken file's one line, and saving: atomic, comments kept, never through a symbolic link."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from velora_tui.report.user_settings import (
    load_settings,
    parse_target,
    save,
    settings_path,
)


def test_the_path_follows_xdg() -> None:
    assert settings_path({"XDG_CONFIG_HOME": "/c", "HOME": "/h"}) == Path(
        "/c/velora-tui/settings.toml"
    )
    assert settings_path({"HOME": "/h"}) == Path("/h/.config/velora-tui/settings.toml")
    # A relative XDG_CONFIG_HOME is ignored, as the spec says.
    assert settings_path({"XDG_CONFIG_HOME": "rel", "HOME": "/h"}) == Path(
        "/h/.config/velora-tui/settings.toml"
    )


def test_no_file_is_every_default(tmp_path: Path) -> None:
    settings = load_settings(tmp_path / "none.toml")
    assert settings.problem() is None
    assert settings.smoothing == 0.6
    assert {source for _, _, source in settings.in_force()} == {"default"}


def test_values_from_the_file_and_flags_over_them(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    path.write_text(
        'theme = "nord"\nsmoothing = 0.9\nx_axis = "time"\nband = "min-max"\nnotify = "osc9"\n'
        '[targets]\n"CartPole-v1" = 480\n[health]\nplateau_episodes = 800\n'
    )
    settings = load_settings(path)
    assert settings.problem() is None
    assert (settings.theme, settings.smoothing, settings.x_axis) == ("nord", 0.9, "time")
    assert settings.notify_method() == "osc9"
    assert settings.targets == {"CartPole-v1": 480.0}
    assert settings.health.plateau_episodes == 800
    assert settings.source("health.plateau_episodes") == "file"
    settings.apply_flags(targets={"CartPole-v1": 490.0}, notify="bell")
    assert settings.targets == {"CartPole-v1": 490.0}
    assert settings.source("targets.CartPole-v1") == "flag"
    assert settings.source("notify") == "flag"


def test_bad_values_are_named_in_one_line_and_the_rest_kept(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    path.write_text(
        'smoothing = nan\ntheme = "\\u001b[31m"\nwhat = 1\n'
        "[targets]\nA = inf\nB = 3\n[health]\nwindow = 1.5\nspike_factor = 1e300\n"
    )
    settings = load_settings(path)
    line = settings.problem()
    assert line is not None
    assert "\n" not in line
    assert "\x1b" not in line
    for word in ("smoothing", "theme", "what", "'A'", "health.window", "health.spike_factor"):
        assert word in line
    assert settings.smoothing == 0.6
    assert settings.targets == {"B": 3.0}


@pytest.mark.parametrize(
    ("text", "expected"),
    [("CartPole-v1=480", ("CartPole-v1", 480.0)), ("a=b=-3.5", ("a=b", -3.5))],
)
def test_target_flags(text: str, expected: tuple[str, float]) -> None:
    assert parse_target(text) == expected


@pytest.mark.parametrize("text", ["CartPole", "=3", "X=nan", "X=inf", "X=abc", "X=1e300"])
def test_bad_target_flags(text: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        parse_target(text)


def test_save_keeps_the_users_text_and_is_atomic(tmp_path: Path) -> None:
    path = tmp_path / "velora-tui" / "settings.toml"
    assert save({"theme": "nord"}, path) is None
    assert oct(path.parent.stat().st_mode & 0o777) == "0o700"
    path.write_text('# mine\ntheme = "x" # old\n\n[targets]\n"A-v0" = 1\n')
    assert save({"theme": "gruvbox", "smoothing": 0.8}, path) is None
    text = path.read_text()
    assert text.startswith('# mine\ntheme = "gruvbox"\nsmoothing = 0.8\n')
    assert '[targets]\n"A-v0" = 1' in text
    settings = load_settings(path)
    assert (settings.theme, settings.smoothing, settings.targets) == ("gruvbox", 0.8, {"A-v0": 1.0})
    assert [p.name for p in path.parent.iterdir()] == ["settings.toml"]  # no temporary left


def test_save_never_writes_through_a_link_nor_over_a_broken_file(tmp_path: Path) -> None:
    folder = tmp_path / "velora-tui"
    folder.mkdir(mode=0o700)
    target = tmp_path / "elsewhere.toml"
    target.write_text("theme = 'a'\n")
    path = folder / "settings.toml"
    path.symlink_to(target)
    problem = save({"theme": "b"}, path)
    assert problem is not None
    assert "symbolic link" in problem
    assert target.read_text() == "theme = 'a'\n"
    path.unlink()
    path.write_text("theme = = broken\n")
    assert save({"theme": "b"}, path) is not None
    assert path.read_text() == "theme = = broken\n"
    linked = tmp_path / "linked"
    linked.symlink_to(folder)
    problem = save({"theme": "b"}, linked / "settings.toml")
    assert problem is not None
    assert "symbolic link" in problem


def test_save_refuses_a_folder_others_can_write(tmp_path: Path) -> None:
    folder = tmp_path / "velora-tui"
    folder.mkdir()
    os.chmod(folder, 0o777)
    problem = save({"theme": "b"}, folder / "settings.toml")
    assert problem is not None
    assert "writable by others" in problem
