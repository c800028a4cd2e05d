"""A directory source that is a big tree: it is walked again only as often as its last walk's
cost allows (monitor.WALK_GAP_FACTOR), yet a database that appears deep in it after the start
is found, whether file events arrive (watching) or not (polling), and a database replaced in it
is read anew."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.cli import Lines
from tests.support.databases import add_episode, build_velora_db
from tests.support.processes import Spawn, python_command
from tests.support.waiting import wait_for

TIMEOUT = 120.0
DIRECTORIES = 2_000


def big_tree(root: Path, proto: Path) -> list[Path]:
    """DIRECTORIES directories below `root` (40 groups of 49 runs, and the groups), with a copy
    of `proto` in two of them; returns those two databases."""
    dbs = []
    for group in range(40):
        for run in range(DIRECTORIES // 40 - 1):
            (root / f"group-{group:02d}" / f"run-{run:02d}").mkdir(parents=True)
    for where in ("group-03/run-07", "group-31/run-44"):
        db = root / where / "metrics.db"
        shutil.copyfile(proto, db)
        dbs.append(db)
    return dbs


def rows(lines: list[str], db: Path) -> list[int]:
    return [row["id"] for row in map(json.loads, lines) if row["db"] == str(db)]


@pytest.mark.parametrize("poll", [False, True], ids=["watching", "polling"])
def test_a_database_made_deep_in_a_big_tree_is_found(
    tmp_path: Path, spawn: Spawn, poll: bool
) -> None:
    proto = build_velora_db(tmp_path / "proto" / "metrics.db", [3])
    root = tmp_path / "tree"
    first, _ = big_tree(root, proto)
    tail = spawn(
        python_command("tail", "-f", "--json", "-n", "0", *(["--poll"] if poll else []), root),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert tail.stdout is not None
    out = Lines(tail.stdout)

    def started() -> bool:  # an episode in a known database until one is printed
        if rows(out.drain(), first):
            return True
        add_episode(first, 1)
        return False

    wait_for(started, TIMEOUT, interval=0.5, what="the first database's new row")
    # A new directory and its database at once, deep down: an event for the file may come
    # before the new directories are watched (then the next walk finds it).
    deep = root / "group-17" / "run-20" / "seed-3" / "a" / "b" / "c" / "metrics.db"
    deep.parent.mkdir(parents=True)
    shutil.copyfile(proto, deep)
    wait_for(lambda: rows(out.drain(), deep) == [1, 2, 3], TIMEOUT, what="the new database's rows")
    add_episode(deep, 1)
    wait_for(lambda: rows(out.drain(), deep) == [1, 2, 3, 4], TIMEOUT, what="its next row")
    # Replaced by another file: read anew from its first row (tail -f replays a new file).
    replacement = deep.with_name("metrics.db.new")
    build_velora_db(replacement, [2])
    replacement.replace(deep)
    wait_for(
        lambda: rows(out.drain(), deep) == [1, 2, 3, 4, 1, 2], TIMEOUT, what="the new file's rows"
    )
