"""A command's connection starts before the command is imported and is taken by its link (or
ended at exit); the Python a host runs is remembered and run by its path next time, and a path
that no longer works there is forgotten without the user seeing a failure (a real sshd)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.cli import run_cli
from tests.support.fake_reader import fake_reader
from tests.support.reading import copy_sample
from tests.support.sshd import SshServer
from tests.support.waiting import wait_for
from velora_tui.remote import interpreters, launch
from velora_tui.remote.address import Host
from velora_tui.remote.sources import open_sources

VT = Host("vt")


def running(text: str) -> bool:
    found = subprocess.run(["pgrep", "-f", text], capture_output=True, check=False)
    return found.returncode == 0


def test_the_link_takes_the_head_start(sshd: SshServer, tmp_path: Path) -> None:
    db = copy_sample(tmp_path / "r")
    (early,) = launch.head_start(["-n", "3", "--json", f"vt:{db}", str(tmp_path / "local.db")])
    monitor, remotes = open_sources([f"vt:{db}"])
    try:
        assert remotes is not None
        (link,) = remotes.links
        assert link.process is not None
        assert link.process.pid == early.process.pid  # one connection, not two
        assert link.status.state == "connected"
        monitor.refresh()
        (database,) = monitor.databases.values()
        assert len(database.summaries) == 3
    finally:
        monitor.close()


def test_a_head_start_another_command_would_not_make_is_ended(
    sshd: SshServer, tmp_path: Path
) -> None:
    db = copy_sample(tmp_path / "r")
    taken = launch.head_start([f"vt:{db}"])
    monitor, remotes = open_sources([f"vt:{tmp_path}"])  # another source: another program
    try:
        assert remotes is not None
        assert remotes.links[0].process is not None
        assert remotes.links[0].process.pid != taken[0].process.pid
        assert taken[0].process.poll() is not None  # ended at once, not left to run
    finally:
        monitor.close()


def test_a_head_start_nobody_takes_ends_with_the_process(sshd: SshServer, tmp_path: Path) -> None:
    db = copy_sample(tmp_path / "r")
    started = tmp_path / "started"
    wrapper = tmp_path / "bin" / "python3"
    wrapper.parent.mkdir()
    # Not `exec`: the shell stays, with this path in its command line, while the reader runs.
    wrapper.write_text(f'#!/bin/sh\ntouch {started}\npython3 "$@"\n')
    wrapper.chmod(0o755)
    words = ["--remote-python", str(wrapper), f"vt:{db}"]
    script = (
        "import os, time\n"
        "from velora_tui.remote import launch\n"
        f"assert launch.head_start({words!r})\n"
        f"while not os.path.exists({str(started)!r}):\n"
        "    time.sleep(0.02)\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    wait_for(lambda: not running(str(wrapper)), 20)  # the reader there ended with it
    # A usage error ends it as well (before or after it reached the host).
    result = run_cli("tail", *words[:2], "--no-such-option", words[2])
    assert result.code == 2
    assert "No such option" in result.err
    wait_for(lambda: not running(str(wrapper)), 20)


def test_the_python_a_host_runs_is_remembered(sshd: SshServer, tmp_path: Path) -> None:
    db = copy_sample(tmp_path / "r")
    first = run_cli("tail", "-n", "1", "--json", f"vt:{db}")
    assert first.code == 0, first.err
    (remembered,) = interpreters.listed()
    host, python, exe = remembered
    assert (host, python) == ("vt", "python3")
    assert Path(exe).is_absolute()
    assert Path(exe).exists()  # this machine is the host
    # The next connection runs it by its path.
    monitor, remotes = open_sources([f"vt:{db}"])
    try:
        assert remotes is not None
        (link,) = remotes.links
        assert link.status.state == "connected"
        assert isinstance(link.process, subprocess.Popen)  # its own ssh: no reader was kept
        assert f"exec {exe} -I -S -c" in str(link.process.args)
    finally:
        monitor.close()
    again = run_cli("tail", "-n", "1", "--json", f"vt:{db}")
    assert again.out == first.out
    info = run_cli("cache", "info")
    assert f"vt: python3 is {exe}" in info.out


def test_a_remembered_python_that_is_gone_is_forgotten(sshd: SshServer, tmp_path: Path) -> None:
    db = copy_sample(tmp_path / "r")
    expected = run_cli("show", "2", str(db))
    gone = tmp_path / "removed" / "bin" / "python3"
    interpreters.remember(VT, "python3", str(gone))
    assert interpreters.remembered(VT, "python3") == str(gone)
    shown = run_cli("show", "2", f"vt:{db}")
    assert shown.code == 0, shown.err
    assert shown.out == expected.out.replace(f"  {db}\n", f"  vt:{db}\n", 1)
    assert shown.err == ""  # no state said: the name was tried again at once
    (remembered,) = interpreters.listed()
    assert remembered[2] != str(gone)
    cleared = run_cli("cache", "clear")
    assert cleared.code == 0
    assert interpreters.listed() == []


def test_a_read_waits_while_the_host_says_what_it_holds(sshd: SshServer, tmp_path: Path) -> None:
    """Connected, but the databases not yet announced (a host walking a big tree, a connection
    made again): a read then waits for them rather than failing with "not responding"."""
    experiments = [[1, "A", "E", "{}", "2026-12-01 10:00:00"]]
    fake = fake_reader(tmp_path, [{"path": "/x/metrics.db", "experiments": experiments}], 1.5)
    monitor, remotes = open_sources([f"vt:{tmp_path}/x"], python=str(fake), sync=False)
    try:
        assert remotes is not None
        remotes.start()
        (link,) = remotes.links
        wait_for(lambda: link.status.state == "connected", 30)
        assert not link.synced.is_set()
        rows = link.ask((0, "/x/metrics.db"), "SELECT id FROM experiment", {"after": 0})
        assert rows == [tuple(experiments[0])]
    finally:
        monitor.close()


def test_a_stand_in_made_after_the_first_walk_is_read_without_waiting_for_the_next(
    sshd: SshServer, tmp_path: Path
) -> None:
    """A host that answers at once makes its stand-ins while the app's first read walks their
    folders, or before its file watch begins: they are taken in at the next check (the feed's,
    right after the watch starts), not left to the next walk."""
    db = copy_sample(tmp_path / "r")
    monitor, remotes = open_sources([f"vt:{db}"], sync=False)
    try:
        assert remotes is not None
        assert monitor.discover() == []  # the first walk: nothing there yet
        remotes.start()
        (link,) = remotes.links
        wait_for(link.synced.is_set, 30)
        (stand_in,) = link.stand_ins.values()
        assert stand_in.path.exists()
        checks = monitor.start_checks()  # no walk
        assert list(checks) == [stand_in.path]
        (update,) = monitor.refresh([stand_in.path])
        assert len(monitor.databases[stand_in.path].summaries) == 3
        assert update.first_load
    finally:
        monitor.close()
