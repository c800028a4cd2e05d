"""A big host, through the real test sshd: many databases under one source (a sweep of ~1,000
runs is a real case) never run either side out of file descriptors, long paths by the thousand
never make a command line too long, and any error in a link is a state and a retry, never a
silent dead thread."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.support.browser import command_line
from tests.support.cli import Lines, Result, check_output
from tests.support.databases import add_episode, build_velora_db
from tests.support.fake_reader import fake_reader
from tests.support.processes import Spawn, child_env, python_command
from tests.support.sshd import SshServer
from tests.support.waiting import wait_for
from velora_tui.remote.address import parse_source
from velora_tui.remote.sources import Remotes
from velora_tui.remote.stand_ins import StandIn

TIMEOUT = 300.0
# Long folder names: 1,200 of them pass Linux's 128 KiB limit on one argument.
LONG = "a-run-of-a-sweep-with-a-long-descriptive-folder-name-as-schedulers-make-them"


def sweep(root: Path, count: int, name: str = "run") -> Path:
    """`count` small velora databases below `root/runs` (copies of one: fast)."""
    proto = build_velora_db(root / "proto" / "metrics.db", [3])
    runs = root / "runs"
    for index in range(count):
        folder = runs / f"{name}-{index:05d}"
        folder.mkdir(parents=True)
        shutil.copyfile(proto, folder / "metrics.db")
    return runs


def limited_python(folder: Path, files: int) -> Path:
    """A `--remote-python` that runs the reader with at most `files` open file descriptors."""
    wrapper = folder / "python-few-files"
    wrapper.write_text(f'#!/bin/sh\nulimit -n {files}\nexec python3 "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


def run_limited(*args: str | Path, files: int) -> Result:
    """The CLI with at most `files` open file descriptors of its own."""

    def lower() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (files, files))

    proc = subprocess.run(
        python_command(*args),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=TIMEOUT,
        env=child_env(),
        preexec_fn=lower,
    )
    result = Result(proc.returncode, proc.stdout.decode("utf-8", "replace"), proc.stderr.decode())
    check_output(result.out, result.err)
    return result


def listed(result: Result) -> set[str]:
    assert result.code == 0, result.err[-3000:]
    rows = json.loads(result.out)
    assert {row["host_state"]["state"] for row in rows} == {"connected"}
    return {row["db"] for row in rows}


def expected(runs: Path) -> set[str]:
    return {f"vt:{path}" for path in runs.glob("*/metrics.db")}


def test_more_databases_than_file_descriptors(sshd: SshServer, tmp_path: Path) -> None:
    """300 databases; the reader may open 100 files, the local side 700 (its data layer holds two
    per copy): before, the reader said "unable to open database file" for most of them and the
    link's thread died writing the copies (`Too many open files`)."""
    runs = sweep(tmp_path, 300)
    python = limited_python(tmp_path, 100)
    result = run_limited("ls", "--json", "--remote-python", python, f"vt:{runs}", files=700)
    assert listed(result) == expected(runs), result.err[-2000:]
    assert "unreadable" not in result.err


def test_a_reconnect_with_1200_saved_positions(sshd: SshServer, tmp_path: Path) -> None:
    """Two `ls` of 1,200 databases with long paths: nothing of them travels as an argument of
    the ssh command (once, 1,200 resume positions did, and Linux refused it over 128 KiB)."""
    runs = sweep(tmp_path, 1200, LONG)
    first = run_limited("ls", "--json", f"vt:{runs}", files=4096)
    assert listed(first) == expected(runs)
    again = run_limited("ls", "--json", f"vt:{runs}", files=4096)
    assert listed(again) == expected(runs)
    assert "refused" not in again.err


def test_closed_databases_are_followed_exactly_once(
    sshd: SshServer, tmp_path: Path, spawn: Spawn
) -> None:
    """`tail -f` on 20 databases with a reader that may keep 8 open: new episodes in the ones it
    closed (looked at by their header) arrive, each once, and so do later ones."""
    runs = sweep(tmp_path, 20)
    python = limited_python(tmp_path, 40)  # (40 - 16) // 3 = 8 databases open at once
    tail = spawn(
        python_command("tail", "-f", "--json", "-n", "0", "--remote-python", python, f"vt:{runs}"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert tail.stdout is not None
    assert tail.stderr is not None
    out, err = Lines(tail.stdout), Lines(tail.stderr)
    err.first("vt: connected")
    time.sleep(1.0)  # the first reads done: most databases are closed now
    dbs = sorted(runs.glob("*/metrics.db"))
    for _ in range(2):
        for db in dbs:
            add_episode(db, 1)
        time.sleep(0.6)  # more than a closed database's look
    out.take(40, TIMEOUT)
    time.sleep(1.0)  # anything printed twice would show up now
    tail.send_signal(signal.SIGTERM)
    assert tail.wait(TIMEOUT) == 0
    seen = sorted((row["db"], row["id"]) for row in map(json.loads, out.rest()))
    assert seen == sorted((f"vt:{db}", n) for db in dbs for n in (4, 5))
    check_output("\n".join(err.rest()))


def test_an_id_out_of_range_is_that_database_s_state(sshd: SshServer, tmp_path: Path) -> None:
    """A host whose answer holds an id SQLite cannot hold (2**63): that database's state, the
    other listed (once, OverflowError killed the link's thread while `ls` said "connected")."""
    fake = fake_reader(
        tmp_path,
        [
            {
                "path": "/r/ok/metrics.db",
                "experiments": [[1, "NeuroFlow", "CartPole-v1", "{}", "t"]],
            },
            {"path": "/r/big/metrics.db", "experiments": [[2**63, "a", "e", "{}", "t"]]},
        ],
    )
    result = run_limited("ls", "--json", "--remote-python", fake, "vt:/r", files=1024)
    rows = json.loads(result.out)
    assert [(row["db"], row["agent"]) for row in rows] == [("vt:/r/ok/metrics.db", "NeuroFlow")]
    assert {row["host_state"]["state"] for row in rows} == {"connected"}
    assert (
        "vt:/r/big/metrics.db: unreadable: the host's answer is not rows: an integer" in result.err
    )


def test_any_error_in_a_link_is_a_state_and_a_retry(
    sshd: SshServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error nobody foresaw while handling what the host says (here: a stand-in's write
    raising) makes the link `unreadable` with the error's text and a retry; the next
    connection goes on."""
    runs = sweep(tmp_path, 2)
    failures = ["boom"]
    start = StandIn.start

    def failing(self: StandIn, ident: str, entropy: bool) -> None:
        if failures:
            raise RuntimeError(failures.pop())
        start(self, ident, entropy)

    monkeypatch.setattr(StandIn, "start", failing)
    remotes = Remotes(parse_source(f"vt:{runs}") or [])
    (link,) = remotes.links
    remotes.start()
    try:
        wait_for(lambda: link.status.state == "unreadable", 30, what="unreadable")
        assert "boom" in link.status.message
        wait_for(lambda: link.status.retry_at is not None, 10, what="a retry")
        wait_for(lambda: len(link.stand_ins) == 2, 30, what="both databases, after the retry")
        wait_for(lambda: link.status.state == "connected", 30, what="connected again")
    finally:
        remotes.stop()


def readers() -> list[int]:
    """The remote readers running (`python3 -c <velora-tui's reader bootstrap>`)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            words = command_line(int(entry.name))
            if words[1:4] == ["-I", "-S", "-c"] and "velora-tui" in words[4]:
                found.append(int(entry.name))
    return found


def open_files(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


@pytest.mark.soak
def test_a_host_with_5000_databases(sshd: SshServer, tmp_path: Path) -> None:
    """`ls` lists all 5,000; the peak open files of the app and of the reader are measured
    (printed), the reader's bounded."""
    runs = sweep(tmp_path, 5000)
    started = time.monotonic()
    proc = subprocess.Popen(
        python_command("ls", "--json", f"vt:{runs}"),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=child_env(),
    )
    peaks = {"app": 0, "reader": 0}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peaks["app"] = max(peaks["app"], open_files(proc.pid))
            for pid in readers():
                peaks["reader"] = max(peaks["reader"], open_files(pid))
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate(timeout=TIMEOUT)
    took = time.monotonic() - started
    done.set()
    sampler.join()
    result = Result(proc.returncode, out.decode(), err.decode())
    check_output(result.out, result.err)
    cache = Path(os.environ["VELORA_TUI_CACHE"]) / "remote"
    left = list(cache.rglob("metrics.db"))
    print(f"\n5,000 databases: ls {took:.1f} s, peak open files: {peaks}")
    assert result.code == 0, result.err[-2000:]
    rows = json.loads(result.out)
    assert {row["host_state"]["state"] for row in rows} == {"connected"}
    assert left == []  # the stand-ins went with the process
    assert 0 < peaks["reader"] < 200
    assert {row["db"] for row in rows} == expected(runs)  # was 24 (one deadline for all)
    assert result.err == ""  # no per-database line ("...: ok", "not created yet")
