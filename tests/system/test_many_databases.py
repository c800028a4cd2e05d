"""A folder of a sweep's databases (1,000 runs is a real case, a host may hold 5,000): every
one listed and followed with few file descriptors. Before, each database held two of them open
(its SQLite connection and its header's), so `ulimit -n 1024` ran out at ~500 ("Too many open
files", said as "not created yet"), and the first read waited one 5 s deadline for all of
them together (5,000: 24 listed)."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.cli import Lines, Result, check_output, run_cli_with_files
from tests.support.databases import add_episode, copies
from tests.support.processes import Spawn, python_command, with_open_files
from tests.support.waiting import wait_for

TIMEOUT = 120.0


def listed(result: Result, runs: Path) -> None:
    """Every database of `runs` listed, each once, and nothing said on stderr."""
    assert result.code == 0, result.err[-2000:]
    rows = json.loads(result.out)
    assert sorted(row["db"] for row in rows) == sorted(map(str, runs.glob("*/metrics.db")))
    assert {row["episodes"] for row in rows} == {3}
    assert result.err == "", result.err[-2000:]


def test_ls_of_2000_databases_with_256_files(tmp_path: Path) -> None:
    runs = copies(tmp_path, 2000)
    started = time.monotonic()
    result = run_cli_with_files(256, "ls", "--json", runs, timeout=TIMEOUT)
    print(f"\nls of 2,000 databases, ulimit -n 256: {time.monotonic() - started:.1f} s")
    listed(result, runs)


@pytest.mark.soak
def test_ls_of_5000_databases_with_1024_files(tmp_path: Path) -> None:
    runs = copies(tmp_path, 5000)
    started = time.monotonic()
    result = run_cli_with_files(1024, "ls", "--json", runs, timeout=TIMEOUT)
    print(f"\nls of 5,000 databases, ulimit -n 1024: {time.monotonic() - started:.1f} s")
    listed(result, runs)


def found(lines: list[str], probe: Path) -> list[tuple[str, int]]:
    rows = (json.loads(line) for line in lines)
    return [(row["db"], row["id"]) for row in rows if row["db"] != str(probe)]


def test_tail_follow_600_databases_with_256_files(tmp_path: Path, spawn: Spawn) -> None:
    """Each new episode of 600 databases arrives once, though at most ~48 are open at a time:
    the others are looked at by their stat and header, and opened again when they change."""
    runs = copies(tmp_path, 600)
    dbs = sorted(runs.glob("*/metrics.db"))
    tail = spawn(
        with_open_files(256, python_command("tail", "-f", "--json", "-n", "0", runs)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert tail.stdout is not None
    assert tail.stderr is not None
    out, err = Lines(tail.stdout), Lines(tail.stderr)
    # Episodes in one more database until one is printed: its first read is over then.
    probe = dbs.pop()

    def printed() -> bool:
        if out.drain():
            return True
        add_episode(probe, 1)
        return False

    wait_for(printed, TIMEOUT, interval=0.5, what="a row of the probe")
    for db in dbs:
        add_episode(db, 1)
    for db in dbs:
        add_episode(db, 1)
    wait_for(lambda: len(found(out.drain(), probe)) >= 2 * len(dbs), TIMEOUT, what="every row")
    time.sleep(1.5)  # a heartbeat: anything printed twice would show up now
    tail.send_signal(signal.SIGTERM)
    assert tail.wait(TIMEOUT) == 0
    seen = sorted(found(out.rest(), probe))
    assert seen == sorted((str(db), n) for db in dbs for n in (4, 5))
    rest = err.rest()
    check_output("\n".join(rest))
    # Nothing but the feed's own notice, which a busy machine may cause (events arriving after
    # the heartbeat that found their rows): no database's state, no error.
    assert [line for line in rest if "polling: file events are missing" not in line] == []
