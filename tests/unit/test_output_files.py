"""The files the app writes into its output folder (the CSV export, the SVG screenshot) are
never opened through a symbolic link: names are predictable, and a link planted under one in a
shared folder would have the app overwrite whatever it points to."""

from __future__ import annotations

from pathlib import Path

import pytest

from velora_tui.data.files import new_output


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
