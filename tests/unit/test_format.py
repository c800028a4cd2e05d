"""Human forms shared by the app's widgets."""

from __future__ import annotations

from pathlib import Path

import pytest

from velora_tui.report.format import shown_path


def test_paths_below_the_working_directory_are_shown_from_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert shown_path(tmp_path / "metrics.db") == "metrics.db"
    assert shown_path(tmp_path / "runs" / "a" / "metrics.db") == "runs/a/metrics.db"
    elsewhere = tmp_path.parent / "other" / "metrics.db"
    assert shown_path(elsewhere) == str(elsewhere)


def test_a_working_directory_that_is_gone_shows_whole_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    assert shown_path(tmp_path / "metrics.db") == str(tmp_path / "metrics.db")
