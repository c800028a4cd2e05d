"""A directory source that is a big tree: it is walked again only as often as its last walk's
cost allows (monitor.WALK_GAP_FACTOR), yet a database that appears deep in it after the start
is found, whether file events arrive (watching) or not (polling), and a database replaced in it
is read anew."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.support.cli import Lines
from tests.support.databases import add_episode, build_velora_db
from tests.support.processes import Spawn, python_command
from tests.support.waiting import wait_for
from velora_tui.data import monitor as monitor_module
from velora_tui.data.files import FileSystem
from velora_tui.data.monitor import Monitor

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


class SlowListings(FileSystem):
    """Directory listings that take `seconds` each (a busy file server), counted."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.listings = 0
        self._lock = threading.Lock()

    def listdir(self, path: Path) -> list[tuple[str, bool]]:
        time.sleep(self.seconds)
        with self._lock:
            self.listings += 1
        return super().listdir(path)


def test_a_tree_is_walked_again_only_when_its_last_walk_allows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The heartbeat's discover_due never starts a walk sooner than WALK_GAP_FACTOR times the
    last walk's duration: a walk of five slow listings (0.25 s) waits two minutes for the
    next. Once the gap has passed (the factor made 0 here), the next call walks, and what
    that walk found is added by a call after it ends."""
    root = tmp_path / "runs"
    for name in "abcd":
        (root / name).mkdir(parents=True)
    files = SlowListings(0.05)
    monitor = Monitor([root], files=files)
    try:
        walked = files.listings
        assert walked == 5
        for _ in range(3):
            assert monitor.discover_due() == []
        time.sleep(0.3)  # a walk started by mistake would have listed a directory by now
        assert files.listings == walked
        new = build_velora_db(root / "c" / "deep" / "metrics.db", [2])
        monkeypatch.setattr(monitor_module, "WALK_GAP_FACTOR", 0)
        assert monitor.discover_due() == []  # a walk is never waited for
        wait_for(lambda: new in monitor.discover_due(), TIMEOUT, what="the new database")
        assert files.listings > walked
        assert list(monitor.databases) == [new]
    finally:
        monitor.close()
