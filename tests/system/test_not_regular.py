"""Paths named metrics.db that are not regular files: a FIFO, a socket, a character device
(/dev/null linked as metrics.db), a directory, a symbolic link loop. Each gets one clear state
at once, never an open that waits (a FIFO's open waits for a writer, forever), and never stops
a good database beside it: alone and in a directory tree, in the data layer, the command line
and the app.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support.cli import Lines, check_output, run_cli, strict_json
from tests.support.databases import add_episode
from tests.support.folders import assert_unchanged
from tests.support.processes import Spawn, python_command
from tests.support.reading import copy_sample
from velora_tui.data.monitor import Monitor
from velora_tui.data.records import SourceState

TIMEOUT = 30.0
# What each kind says; every one is `unreadable`.
KINDS = {
    "fifo": "not a regular file: a named pipe (FIFO)",
    "socket": "not a regular file: a socket",
    "device": "not a regular file: a character device",
    "directory": "not a regular file: a directory",
    "link-loop": "symbolic link loop",
}
GOOD = ("a-good", "z-good")  # walked first and last


def make_fifo(path: Path) -> None:
    os.mkfifo(path)


def make_socket(path: Path) -> None:
    """A real UNIX socket bound at `path` (by its short relative name: a socket's path is
    limited to ~108 bytes); the file stays after the socket is closed."""
    with contextlib.chdir(path.parent), socket.socket(socket.AF_UNIX) as server:
        server.bind(path.name)


def make_device(path: Path) -> None:
    path.symlink_to("/dev/null")


def make_directory(path: Path) -> None:
    path.mkdir()


def make_link_loop(path: Path) -> None:
    path.symlink_to(path.name)  # metrics.db -> metrics.db


MAKERS: dict[str, Callable[[Path], None]] = {
    "fifo": make_fifo,
    "socket": make_socket,
    "device": make_device,
    "directory": make_directory,
    "link-loop": make_link_loop,
}


def make_bad(kind: str, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "metrics.db"
    MAKERS[kind](path)
    return path


def remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        path.rmdir()
    else:
        path.unlink()


def tree_of_every_kind(root: Path) -> tuple[list[Path], dict[str, Path]]:
    """Two good databases (first and last in the walk's order) and one path of every kind
    between them."""
    good = [copy_sample(root / name) for name in GOOD]
    bad = {kind: make_bad(kind, root / f"m-{kind}") for kind in KINDS}
    return good, bad


# -- the data layer ----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_path_that_is_not_a_regular_file_gets_a_clear_state(tmp_path: Path, kind: str) -> None:
    good = copy_sample(tmp_path / "good")
    bad = make_bad(kind, tmp_path / "bad")
    with assert_unchanged(tmp_path):
        started = time.monotonic()
        monitor = Monitor([good, bad])
        monitor.refresh()
        assert time.monotonic() - started < TIMEOUT  # (a FIFO's open would wait forever)
        states = {status.path: status for status in monitor.statuses()}
        assert states[bad].state is SourceState.UNREADABLE
        assert states[bad].message.startswith(KINDS[kind])
        assert states[good].state is SourceState.OK
        assert len(monitor.summaries()) == 3
        assert monitor.refresh() == []  # nothing new: the bad path is not looked at again
    # A regular database that takes its place is read as usual.
    remove(bad)
    copy_sample(bad.parent)
    with assert_unchanged(tmp_path):
        [update] = monitor.refresh()
        assert update.db == bad
        assert monitor.databases[bad].status.state is SourceState.OK
        assert len(monitor.summaries()) == 6
        monitor.close()


def test_a_tree_with_every_kind_beside_good_databases(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    good, bad = tree_of_every_kind(root)
    with assert_unchanged(tmp_path):
        monitor = Monitor([root])
        assert sorted(monitor.databases) == sorted([*good, *bad.values()])
        monitor.refresh()
        states = {status.path: status for status in monitor.statuses()}
        for kind, path in bad.items():
            assert states[path].state is SourceState.UNREADABLE, kind
            assert states[path].message.startswith(KINDS[kind])
        assert all(states[path].state is SourceState.OK for path in good)
        assert len(monitor.summaries()) == 6
        monitor.close()


# -- the command line --------------------------------------------------------------------------


def test_command_line_on_paths_that_are_not_regular_files(tmp_path: Path) -> None:
    """`ls` of a tree lists the good databases and names every bad path on stderr (exit 0);
    `ls`, `tail` and `show` of a bad path alone say what it is (exit 1); none waits."""
    root = tmp_path / "runs"
    _, bad = tree_of_every_kind(root)
    commands: dict[str, list[str | Path]] = {
        "ls-json": ["ls", root, "--json"],
        "ls": ["ls", root],
        "tail": ["tail", "-n", "3", root],
        **{f"ls-{kind}": ["ls", path] for kind, path in bad.items()},
        "tail-fifo": ["tail", bad["fifo"]],
        "show-fifo": ["show", "1", bad["fifo"]],
    }
    with assert_unchanged(tmp_path), ThreadPoolExecutor(4) as pool:
        started = time.monotonic()
        ran = pool.map(lambda args: run_cli(*args), commands.values())
        results = dict(zip(commands, ran, strict=True))
    assert time.monotonic() - started < 2 * TIMEOUT
    listed = results["ls-json"]
    assert listed.code == 0, listed.err
    rows = strict_json(listed.out)
    assert len(rows) == 6
    assert {row["db"] for row in rows} == {str(root / name / "metrics.db") for name in GOOD}
    for name in ("ls-json", "ls", "tail"):
        for kind, path in bad.items():
            assert f"velora-tui: {path}: unreadable: {KINDS[kind]}" in results[name].err, name
    assert results["ls"].code == results["tail"].code == 0
    for kind, path in bad.items():
        alone = results[f"ls-{kind}"]
        assert alone.code == 1
        assert alone.err.startswith(f"velora-tui: {path}: unreadable: {KINDS[kind]}")
        assert alone.out == ""
    for name in ("tail-fifo", "show-fifo"):
        assert results[name].code == 1
        assert KINDS["fifo"] in results[name].err


def test_tail_follow_of_a_tree_holding_a_fifo(tmp_path: Path, spawn: Spawn) -> None:
    root = tmp_path / "runs"
    good = copy_sample(root / "good")
    fifo = make_bad("fifo", root / "fifo")
    tail = spawn(
        python_command("tail", "-f", "-n", "0", "--json", root),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert tail.stdout is not None
    assert tail.stderr is not None
    out, err = Lines(tail.stdout), Lines(tail.stderr)
    [said] = err.take(1)
    assert said == f"velora-tui: {fifo}: unreadable: {KINDS['fifo']}"
    new_id = add_episode(good, 3, episode_num=61, reward=7.0)
    [line] = out.take(1)
    assert strict_json(line)["id"] == new_id
    with assert_unchanged(root):
        tail.send_signal(signal.SIGTERM)
        assert tail.wait(TIMEOUT) == 0
    assert out.rest() == [line]
    check_output(line, "\n".join(err.rest()))


# -- the app -----------------------------------------------------------------------------------


@pytest.mark.ui
async def test_app_on_a_tree_holding_a_fifo_and_on_the_fifo_alone(tmp_path: Path) -> None:
    """The good databases are listed, the bad paths named; keys are answered, `q` quits."""
    from tests.support.app import SIZE, settle, table
    from tests.support.waiting import until
    from velora_tui.tui.app import Settings, make_app
    from velora_tui.tui.screens.help import HelpScreen

    root = tmp_path / "runs"
    good, bad = tree_of_every_kind(root)
    app = make_app([root], Settings())
    async with app.run_test(size=SIZE) as pilot:
        await settle(app)
        assert table(app).row_count == 6
        status = str(app.screen.query_one("#status").render())
        assert "7 sources" in status
        assert "5 unreadable" in status
        await pilot.press("question_mark")
        await until(lambda: isinstance(app.screen, HelpScreen))
        await pilot.press("escape")
        await until(lambda: not isinstance(app.screen, HelpScreen))
        add_episode(good[0], 3, episode_num=61)  # the good databases are still watched
        await until(lambda: getattr(app.monitor.summary((good[0], 3)), "episodes", 0) == 61)
        await pilot.press("q")
    assert not app.is_running

    with assert_unchanged(tmp_path):
        alone = make_app([bad["fifo"]], Settings())
        async with alone.run_test(size=SIZE) as pilot:
            await settle(alone)
            message = str(alone.screen.query_one("#empty").render())
            assert "Cannot read" in message
            assert KINDS["fifo"] in message
            await pilot.press("q")
        assert not alone.is_running
