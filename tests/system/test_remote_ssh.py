"""Sources on other hosts, through a real OpenSSH server on 127.0.0.1 (the `sshd` fixture): the
commands read them as they read local files; `tail -f` prints every episode exactly once across
dropped connections and a server that goes away; bad hosts, hostile paths and a hostile remote
reader end in a clear state, never in a crash or a command run."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import Lines, check_output, run_cli, strict_json
from tests.support.databases import SAMPLE_DB, add_episode
from tests.support.fake_reader import fake_reader
from tests.support.folders import assert_unchanged
from tests.support.processes import Simulator, Spawn, python_command
from tests.support.reading import copy_sample, query
from tests.support.sshd import SSH_ALIASES, SshServer
from tests.support.waiting import wait_for
from velora_tui.remote.sources import open_sources

TIMEOUT = 60.0


def without_place(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k not in ("db", "host", "host_state")} for row in rows]


def follow(spawn: Spawn, *sources: str | Path) -> tuple[subprocess.Popen[bytes], Lines, Lines]:
    tail = spawn(
        python_command("tail", "-f", "--json", "-n", "0", *sources),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert tail.stdout is not None
    assert tail.stderr is not None
    return tail, Lines(tail.stdout), Lines(tail.stderr)


def ids_of(lines: list[str]) -> list[int]:
    return [strict_json(line)["id"] for line in lines]


def test_commands_read_a_remote_source_as_a_local_one(sshd: SshServer, tmp_path: Path) -> None:
    db = copy_sample(tmp_path / "remote" / "runs" / "a")
    source = f"vt:{db.parent.parent}"
    with assert_unchanged(db.parent):  # nothing written or created beside the database
        remote = run_cli("ls", "--json", source)
        local = run_cli("ls", "--json", db.parent.parent)
        shown = run_cli("show", "2", source)
        exported = run_cli("export", "1", source, "--format", "jsonl")
        diffed = run_cli("diff", "1", "2", source)
        tailed = run_cli("tail", "-n", "5", "--json", source)
        alerted = run_cli("alerts", "--json", source)
    assert remote.code == 0, remote.err
    rows = json.loads(remote.out)
    assert without_place(rows) == without_place(json.loads(local.out))
    assert {row["db"] for row in rows} == {f"vt:{db}"}
    assert {row["host"] for row in rows} == {"vt"}
    assert {row["host_state"]["state"] for row in rows} == {"connected"}
    assert shown.code == 0
    assert "InvertedPendulum-v5" in shown.out
    assert shown.lines[0].split() == ["db", f"vt:{db}"]  # as named, never its local stand-in
    assert exported.code == 0
    assert len(exported.lines) == 120
    assert diffed.code == 0
    assert [strict_json(line)["host"] for line in tailed.lines] == ["vt"] * 5
    assert alerted.code == 0, alerted.err
    said = [strict_json(line) for line in alerted.lines]
    assert [(a["kind"], a["id"]) for a in said] == [("finished", n) for n in (3, 2, 1)]
    assert {a["db"] for a in said} == {f"vt:{db}"}
    both = run_cli("ls", source, db.parent.parent)  # two hosts: the table says which
    assert "HOST" in both.lines[0]
    assert {line.split()[-2] for line in both.lines[1:]} == {"vt", "local"}


def test_tail_follow_through_ssh_exactly_once(
    sshd: SshServer, tmp_path: Path, spawn: Spawn, simulator: Simulator
) -> None:
    folder = tmp_path / "remote"
    folder.mkdir()
    db = folder / "metrics.db"
    tail, out, err = follow(spawn, f"vt:{db}")
    wait_for(lambda: any("waiting" in line for line in err.lines) or not err.queue.empty(), 30)
    writer = simulator(db, episodes=150, rate=150, experiments=2)
    out.take(300, TIMEOUT)
    assert writer.wait(TIMEOUT) == 0
    time.sleep(1.0)  # anything printed twice would show up now
    tail.send_signal(signal.SIGTERM)
    assert tail.wait(TIMEOUT) == 0
    lines = out.rest()
    assert ids_of(lines) == [row[0] for row in query(db, "SELECT id FROM episode ORDER BY id")]
    assert {strict_json(line)["host"] for line in lines} == {"vt"}
    check_output("\n".join(lines), "\n".join(err.rest()))


def test_dropped_connections_lose_and_double_nothing(
    sshd: SshServer, tmp_path: Path, spawn: Spawn, simulator: Simulator
) -> None:
    db = tmp_path / "remote" / "metrics.db"
    db.parent.mkdir()
    tail, out, err = follow(spawn, f"vt:{db}")
    err.first("vt: connected")
    writer = simulator(db, episodes=500, rate=80)
    dropped = 0
    while dropped < 3:  # mid-stream, each time once the link is back: the writer goes on
        wait_for(lambda: bool(sshd.connections()), 30, what="a connection")
        time.sleep(1.0)
        dropped += sshd.drop_connections() > 0
    assert writer.wait(TIMEOUT) == 0, "the writer ran out before the drops were done"
    expected = [row[0] for row in query(db, "SELECT id FROM episode ORDER BY id")]
    out.take(len(expected), TIMEOUT)
    time.sleep(1.0)  # anything printed twice would show up now
    tail.send_signal(signal.SIGTERM)
    assert tail.wait(TIMEOUT) == 0
    assert ids_of(out.rest()) == expected
    said = "\n".join(err.rest())
    assert "vt: unreachable since" in said
    check_output(said)


def stopped_server(
    sshd: SshServer, tmp_path: Path, spawn: Spawn, simulator: Simulator, down_for: float
) -> None:
    db = tmp_path / "remote" / "metrics.db"
    db.parent.mkdir()
    tail, out, err = follow(spawn, f"vt:{db}")
    err.first("vt: connected")
    writer = simulator(db, episodes=int(40 * (down_for + 6)), rate=40)
    out.take(40, TIMEOUT)
    sshd.stop()
    time.sleep(down_for)
    sshd.start()
    assert writer.wait(TIMEOUT + down_for) == 0
    expected = [row[0] for row in query(db, "SELECT id FROM episode ORDER BY id")]
    out.take(len(expected), TIMEOUT + down_for)
    time.sleep(1.0)
    tail.send_signal(signal.SIGTERM)
    assert tail.wait(TIMEOUT) == 0
    assert ids_of(out.rest()) == expected
    said = "\n".join(err.rest())
    check_output(said)


def test_server_away_for_a_few_seconds(
    sshd: SshServer, tmp_path: Path, spawn: Spawn, simulator: Simulator
) -> None:
    stopped_server(sshd, tmp_path, spawn, simulator, down_for=3.0)


@pytest.mark.soak
def test_server_away_for_20_seconds(
    sshd: SshServer, tmp_path: Path, spawn: Spawn, simulator: Simulator
) -> None:
    stopped_server(sshd, tmp_path, spawn, simulator, down_for=20.0)


def test_a_replaced_remote_file_is_read_anew(sshd: SshServer, tmp_path: Path, spawn: Spawn) -> None:
    db = copy_sample(tmp_path / "remote")
    tail, out, err = follow(spawn, f"vt:{db}")
    err.first("vt: connected")
    add_episode(db, 1)
    [first] = out.take(1, TIMEOUT)
    assert strict_json(first)["id"] == 221
    fresh = tmp_path / "fresh.db"
    shutil.copyfile(SAMPLE_DB, fresh)
    with sqlite3.connect(fresh) as conn:
        conn.execute("DELETE FROM episode WHERE id > 3")
    os.replace(fresh, db)
    lines = out.take(4, TIMEOUT)
    assert ids_of(lines[1:]) == [1, 2, 3]
    wait_for(lambda: any("replaced" in line for line in err.lines) or not err.queue.empty(), 10)
    tail.send_signal(signal.SIGTERM)
    tail.wait(TIMEOUT)
    assert any("replaced" in line for line in err.rest())


def test_unreachable_host(sshd: SshServer, tmp_path: Path) -> None:
    result = run_cli("ls", f"vt-closed:{tmp_path}")
    assert result.code == 1
    assert "vt-closed: unreachable since" in result.err
    assert "Connection refused" in result.err


def test_refused_key(sshd: SshServer, tmp_path: Path) -> None:
    db = copy_sample(tmp_path / "remote")
    # `vt` logs in (its shared connection stays up): `vt-nokey`, the same address and user
    # with a key the server does not know, must not use that connection (ssh.control_path).
    assert run_cli("ls", f"vt:{db}").code == 0
    result = run_cli("ls", f"vt-nokey:{db}")
    assert result.code == 1
    assert result.err_lines == [
        "velora-tui: vt-nokey: refused since "
        + result.err.split("since ")[1].split()[0]
        + " (authentication refused)"
    ]
    tail = run_cli("tail", "-f", f"vt-nokey:{db}")  # no retry loop: it ends
    assert tail.code == 1
    assert "authentication refused" in tail.err


def test_16_sources_on_16_aliases(sshd: SshServer, tmp_path: Path, spawn: Spawn) -> None:
    folders = [tmp_path / f"host{n:02d}" for n in range(SSH_ALIASES)]
    dbs = [copy_sample(folder) for folder in folders]
    sources = [f"vt-{n:02d}:{db}" for n, db in enumerate(dbs)]
    listed = run_cli("ls", "--json", *sources)
    assert listed.code == 0, listed.err
    rows = json.loads(listed.out)
    assert len(rows) == 3 * SSH_ALIASES
    assert {row["host"] for row in rows} == {f"vt-{n:02d}" for n in range(SSH_ALIASES)}
    tail, out, err = follow(spawn, *sources)
    for n in range(SSH_ALIASES):
        err.first(f"vt-{n:02d}: connected")
    for _ in range(5):
        for db in dbs:
            add_episode(db, 1)
    out.take(5 * SSH_ALIASES, TIMEOUT)
    time.sleep(1.0)
    tail.send_signal(signal.SIGTERM)
    tail.wait(TIMEOUT)
    seen = [(row["host"], row["id"]) for row in map(strict_json, out.rest())]
    assert sorted(seen) == sorted((f"vt-{n:02d}", 221 + k) for n in range(16) for k in range(5))


def test_injection_attempts_run_nothing(sshd: SshServer, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    refused = run_cli("ls", "--", f"-oProxyCommand=touch {marker}:x")
    assert refused.code == 2
    assert "starts with '-'" in refused.err
    also = run_cli("ls", "vt,-oProxyCommand=reboot:x")  # a list with such a host in it
    assert also.code == 2
    quoted = run_cli("ls", f"vt:{tmp_path}/runs/$(touch {marker})")
    assert "waiting" in quoted.err
    backticks = run_cli("ls", f"vt:{tmp_path}/`touch {marker}`;touch {marker}")
    assert backticks.code == 1
    assert not marker.exists()
    odd = tmp_path / 'it\'s a "run" $HOME'
    copy_sample(odd)
    listed = run_cli("ls", "--json", f"vt:{odd}")
    assert listed.code == 0, listed.err
    assert {row["db"] for row in json.loads(listed.out)} == {f"vt:{odd}/metrics.db"}


HOSTILE = {
    "garbage": "printf 'hello\\033[31m red \\033]0;title\\007\\n'",
    "version": 'printf \'{"t":"hello","v":99}\\n\'',
    "truncated": 'printf \'{"t":"hello","v":2}\\n{"t":"hb"\'',
    "oversized": 'printf \'{"t":"hello","v":2}\\n\'; head -c 9000000 /dev/zero | tr \'\\0\' x',
    "bad-rows": ('printf \'{"t":"hello","v":2}\\n{"t":"rows","k":0,"x":[],"e":[[1]]}\\n\''),
    "escape-path": "",  # tests.support.fake_reader: escapes in its path and an agent
    "dies": "echo 'boom' >&2; kill -9 $$",
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_a_hostile_remote_reader(sshd: SshServer, tmp_path: Path, kind: str) -> None:
    if kind == "escape-path":
        experiments = [[1, "\x1b[31mred", "e", "{}", "t"]]
        fake = fake_reader(tmp_path, [{"path": "../../x\x1b[2J", "experiments": experiments}])
    else:
        fake = tmp_path / "fake-python"
        fake.write_text("#!/bin/sh\n" + HOSTILE[kind] + "\n")
        fake.chmod(0o755)
    result = run_cli("ls", "--remote-python", fake, f"vt:{tmp_path}/x")
    check_output(result.out, result.err)
    cache = Path(os.environ["VELORA_TUI_CACHE"])
    written = [p for p in cache.rglob("*") if p.is_file()]
    assert all(cache in p.parents for p in written)
    if kind == "escape-path":
        assert result.code == 0, result.err
        assert "red" in result.out
        return
    assert result.code == 1
    assert "vt: unreadable since" in result.err
    if kind == "dies":
        assert "the remote reader ended: boom" in result.err


def test_a_python_too_old_is_refused(sshd: SshServer, tmp_path: Path) -> None:
    fake = tmp_path / "python2"
    fake.write_text(
        "#!/bin/sh\necho '  File \"<string>\", line 19' >&2\n"
        "echo 'SyntaxError: future feature annotations is not defined' >&2\nexit 1\n"
    )
    fake.chmod(0o755)
    result = run_cli("ls", "--remote-python", fake, f"vt:{tmp_path}")
    assert result.code == 1
    assert "refused" in result.err
    assert "older than Python 3.8" in result.err


def test_a_new_connection_reads_on_from_where_it_was(sshd: SshServer, tmp_path: Path) -> None:
    """After a dropped connection, only what is new is read (the data layer keeps its marks:
    nothing is read again, nothing twice), with few bytes on the wire."""
    db = copy_sample(tmp_path / "remote")
    monitor, remotes = open_sources([f"vt:{db}"])
    assert remotes is not None
    try:
        monitor.refresh()
        monitor.scan_all()
        before = sum(s.episodes for s in monitor.summaries())
        (link,) = remotes.links
        assert sshd.drop_connections() > 0
        wait_for(lambda: link.status.state != "connected", 30, what="the connection dropped")
        for _ in range(5):
            add_episode(db, 2)
        wait_for(lambda: link.status.state == "connected", 30, what="connected again")
        wire = link.wire_bytes
        new: list[int] = []

        def read_new() -> bool:
            for update in monitor.refresh():
                new.extend(row.id for row in update.episodes)
            return len(new) >= 5

        wait_for(read_new, 30, what="the new episodes")
        expected = query(db, "SELECT id FROM episode ORDER BY id DESC LIMIT 5")
        assert new == sorted(row[0] for row in expected)
        assert sum(s.episodes for s in monitor.summaries()) == before + 5
        assert link.wire_bytes - wire < 20_000  # the 5 rows and a few small answers
    finally:
        monitor.close()


def test_two_processes_on_one_source_each_get_every_episode_once(
    sshd: SshServer, tmp_path: Path, spawn: Spawn, simulator: Simulator
) -> None:
    """`ls`, `tail` and a second `tail -f` beside a `tail -f` on the same source: each process
    has its own link and stand-ins, and none disturbs another (two processes once wrote one
    local copy, and the second said "unreadable: rows the copy refuses")."""
    db = tmp_path / "remote" / "metrics.db"
    db.parent.mkdir()
    source = f"vt:{db}"
    first, out, err = follow(spawn, source)
    err.first("vt: connected")
    writer = simulator(db, episodes=300, rate=100)
    out.take(20, TIMEOUT)
    second, out2, err2 = follow(spawn, source)
    listed = run_cli("ls", "--json", source)
    tailed = run_cli("tail", "-n", "3", "--json", source)
    assert listed.code == 0, listed.err
    assert tailed.code == 0, tailed.err
    assert "unreadable" not in listed.err + tailed.err
    assert {row["host_state"]["state"] for row in json.loads(listed.out)} == {"connected"}
    assert len(tailed.lines) == 3
    assert writer.wait(TIMEOUT) == 0
    expected = [row[0] for row in query(db, "SELECT id FROM episode ORDER BY id")]
    out.take(len(expected), TIMEOUT)
    time.sleep(1.0)  # anything printed twice would show up now
    for tail in (first, second):
        tail.send_signal(signal.SIGTERM)
        assert tail.wait(TIMEOUT) == 0
    assert ids_of(out.rest()) == expected
    # The second started with "-n 0" after some episodes: from then on, each exactly once.
    later = ids_of(out2.rest())
    assert later == expected[len(expected) - len(later) :]
    assert len(later) > 0
    check_output("\n".join(err.rest()), "\n".join(err2.rest()))
    private = Path(os.environ["VELORA_TUI_CACHE"]) / "remote" / "private"
    assert not private.exists() or not any(private.iterdir())  # removed at their exit


def test_a_database_made_deep_in_a_big_remote_tree_is_found(
    sshd: SshServer, tmp_path: Path, spawn: Spawn
) -> None:
    """A tree of 2,000 folders: after its first walk the reader watches every folder
    (inotify), and walks it again only minutes later; a run started in a folder made since
    is followed all the same, well before that walk."""
    root = tmp_path / "tree"
    for group in range(20):
        for run in range(100):
            (root / f"group-{group:02d}" / f"run-{run:03d}").mkdir(parents=True)
    copy_sample(root / "group-00" / "run-000")
    tail, out, err = follow(spawn, f"vt:{root}")
    err.first("vt: connected")
    time.sleep(1.0)  # the first walk done
    deep = root / "group-19" / "run-099" / "new" / "seed-1"
    deep.mkdir(parents=True)
    made = copy_sample(deep)
    episode = add_episode(made, 2)
    # A database that appears is printed whole (as `tail -f` does locally), its new row last.
    out.first(
        lambda text: (strict_json(text)["db"], strict_json(text)["id"]) == (f"vt:{made}", episode),
        timeout=60.0,
    )
    tail.send_signal(signal.SIGTERM)
    assert tail.wait(TIMEOUT) == 0
