"""What crosses the link, checked here (no ssh needed): a host's answer becomes rows only when
it holds values SQLite could have given; a stand-in moves as its remote database does, and
nothing the host sends decides where a file is written."""

from __future__ import annotations

import math
import os
import select
from pathlib import Path
from typing import Any

import pytest

from velora_tui.data.connection import change_counter
from velora_tui.data.schema import check_header
from velora_tui.remote import reader
from velora_tui.remote.link import BadData, decode_rows
from velora_tui.remote.stand_ins import StandIn, digest


def test_answers_become_rows_as_sqlite_gives_them() -> None:
    rows = decode_rows(
        [[1, 2.5, "text", None, {"b": "00ff"}], [-(2**63), float("nan"), "", None, {"b": ""}]]
    )
    assert rows[0] == (1, 2.5, "text", None, b"\x00\xff")
    assert rows[1][0] == -(2**63)
    assert math.isnan(rows[1][1])
    assert rows[1][4] == b""
    assert decode_rows([]) == []


@pytest.mark.parametrize(
    "answer",
    [
        {"rows": 1},
        [1, 2],
        [[2**63]],
        [[-(2**63) - 1]],
        [[True]],
        [[[1]]],
        [[{"b": "zz"}]],
        [[{"b": "00", "c": 1}]],
        [[{"x": "00"}]],
    ],
)
def test_what_is_not_rows_is_refused(answer: Any) -> None:
    with pytest.raises(BadData):
        decode_rows(answer)


def test_long_text_is_cut() -> None:
    (row,) = decode_rows([["x" * 2_000_000, {"b": "ab" * 2_000_000}]])
    assert len(row[0]) == 1_000_000
    assert len(row[1]) == 1_000_000


def test_a_stand_in_moves_as_its_database_does(tmp_path: Path) -> None:
    stand_in = StandIn(tmp_path, "/runs/a/metrics.db")
    stand_in.start("1:2", True)
    inode = os.stat(stand_in.path).st_ino
    fd = os.open(stand_in.path, os.O_RDONLY)
    try:
        check_header(fd)
        first = change_counter(fd)
        stand_in.changed()
        assert change_counter(fd) == (first or 0) + 1
        stand_in.start("1:2", True)  # announced again (a new connection): the same file
        assert change_counter(fd) == (first or 0) + 2
    finally:
        os.close(fd)
    assert os.stat(stand_in.path).st_ino == inode
    stand_in.start("1:3", True)  # another remote file: another stand-in
    assert os.stat(stand_in.path).st_ino != inode


def test_a_stand_in_removed_under_it_is_made_again(tmp_path: Path) -> None:
    stand_in = StandIn(tmp_path, "/runs/a/metrics.db")
    stand_in.start("1:2", True)
    stand_in.path.unlink()
    stand_in.changed()
    assert stand_in.path.read_bytes()[:16] == b"SQLite format 3\x00"


@pytest.mark.parametrize("path", ["../../x", "/etc/passwd", "a/../../b", "\x1b[2J", "/" * 300])
def test_a_hostile_remote_path_never_decides_where_the_stand_in_is(
    tmp_path: Path, path: str
) -> None:
    stand_in = StandIn(tmp_path, path)
    stand_in.start("1:1", True)
    assert stand_in.path == tmp_path / digest(path) / "metrics.db"
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == [stand_in.path]


def test_the_reader_hears_of_a_database_made_deep_in_its_tree(tmp_path: Path) -> None:
    """After its first walk the reader watches every folder (inotify): a folder made later,
    and a metrics.db in it, are found from the events alone, with no walk of the tree."""
    root = tmp_path / "tree"
    (root / "a" / "b").mkdir(parents=True)
    found = reader.Reader([str(root)])
    found.discover()
    if found.watches.fd < 0:
        pytest.skip("no inotify on this system: the reader walks its trees instead")
    assert found.watches.complete
    assert found.rescan_every() == reader.WATCHED_RESCAN
    deep = root / "a" / "b" / "new" / "seed-1"
    deep.mkdir(parents=True)
    (deep / "metrics.db").write_bytes(b"")
    (root / "a" / "metrics.db").write_bytes(b"")
    select.select([found.watches.fd], [], [], 5.0)
    found.made()
    assert set(found.databases) == {str(deep / "metrics.db"), str(root / "a" / "metrics.db")}
