"""A command's remote reader is kept for the next command (remote/keeper.py): the next command
on the same sources borrows it, sees what changed meanwhile, and gets every row once, even after
a borrower was killed mid-stream; a second command at the same time connects itself; the kept
reader ends when idle, with `cache clear`, and is no one else's (a real sshd)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import Lines, run_cli
from tests.support.databases import add_episode
from tests.support.processes import Spawn, python_command
from tests.support.reading import copy_sample
from tests.support.sshd import SshServer
from tests.support.waiting import wait_for
from velora_tui.remote import launch
from velora_tui.remote.ssh import control_dir


@pytest.fixture
def keeping(sshd: SshServer, monkeypatch: pytest.MonkeyPatch) -> SshServer:
    """The sshd, with commands keeping their readers (the sshd fixture turns it off)."""
    monkeypatch.setenv(launch.KEEP_ENV, "30")
    return sshd


def kept() -> list[dict[str, Any]]:
    return launch.kept_readers()


def one_kept() -> dict[str, Any]:
    """The one kept reader, once its keeper answers."""
    wait_for(lambda: len(kept()) == 1, what=f"a kept reader (kept: {kept()})")
    (reader,) = kept()
    return reader


def alive(pid: int) -> bool:
    """Whether process `pid` runs (an exited one nobody has reaped is not running)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def episode_ids(output: str) -> list[int]:
    return [json.loads(line)["id"] for line in output.splitlines()]


def test_the_next_command_borrows_the_kept_reader(keeping: SshServer, tmp_path: Path) -> None:
    db = copy_sample(tmp_path / "r")
    local = run_cli("tail", "-n", "3", "--json", db)
    first = run_cli("tail", "-n", "3", "--json", f"vt:{db}")
    assert first.code == 0, first.err
    reader = one_kept()
    assert reader["host"] == "vt"
    assert not reader["lent"]
    assert alive(reader["ssh"])
    again = run_cli("tail", "-n", "3", "--json", f"vt:{db}")
    assert again.code == 0, again.err
    assert again.out == first.out
    assert episode_ids(again.out) == episode_ids(local.out)
    # Borrowed, and given back: the same reader, the same keeper.
    assert one_kept()["ssh"] == reader["ssh"]
    assert one_kept()["pid"] == reader["pid"]
    info = run_cli("cache", "info")
    assert f"process {reader['pid']}" in info.out
    # A command that stops at a usage error gives back what its head start borrowed.
    wrong = run_cli("tail", "-n", "many", f"vt:{db}")
    assert wrong.code == 2
    assert one_kept()["ssh"] == reader["ssh"]
    assert not one_kept()["lent"]
    # A command on other sources of that host borrows it too, and reads its own.
    other = copy_sample(tmp_path / "other")
    add_episode(other, 2, episode_num=777)
    elsewhere = run_cli("tail", "-n", "1", "--json", f"vt:{other}")
    assert elsewhere.code == 0, elsewhere.err
    (row,) = [json.loads(line) for line in elsewhere.lines]
    assert (row["db"], row["episode_num"]) == (f"vt:{other}", 777)
    assert one_kept()["ssh"] == reader["ssh"]
    # Through another name for the host (another ssh route and key): a reader of its own.
    assert run_cli("tail", "-n", "1", f"vt-slow:{db}").code == 0
    wait_for(lambda: len(kept()) == 2, what="two kept readers")
    assert {r["host"] for r in kept()} == {"vt", "vt-slow"}


def test_what_changed_between_commands_is_seen(keeping: SshServer, tmp_path: Path) -> None:
    folder = tmp_path / "runs"
    first_db = copy_sample(folder / "a")
    listed = run_cli("ls", "--json", f"vt:{folder}")
    assert listed.code == 0, listed.err
    assert len({row["db"] for row in json.loads(listed.out)}) == 1
    reader = one_kept()
    # Meanwhile: an episode in the first database, and a second database.
    new_id = add_episode(first_db, 1, episode_num=999)
    copy_sample(folder / "b")
    again = run_cli("ls", "--json", f"vt:{folder}")
    assert again.code == 0, again.err
    assert len({row["db"] for row in json.loads(again.out)}) == 2
    # Another command on the same sources borrows the same reader.
    last = run_cli("tail", "-n", "1", "--json", f"vt:{folder}")
    assert last.code == 0, last.err
    (row,) = [json.loads(line) for line in last.lines]
    assert (row["id"], row["episode_num"]) == (new_id, 999)
    assert row["db"].endswith("a/metrics.db")
    assert one_kept()["ssh"] == reader["ssh"]


def test_a_borrower_killed_mid_stream_leaves_the_next_one_right(
    keeping: SshServer, tmp_path: Path, spawn: Spawn
) -> None:
    db = copy_sample(tmp_path / "r")
    assert run_cli("tail", "-n", "1", f"vt:{db}").code == 0
    reader = one_kept()
    follower = spawn(python_command("tail", "-f", "-n", "1", "--json", f"vt:{db}"), stdout=-1)
    assert follower.stdout is not None
    lines = Lines(follower.stdout)
    lines.take(1)
    wait_for(lambda: one_kept()["lent"], what="the reader lent to tail -f")
    # While it is lent, a second command connects itself, and keeps nothing of its own.
    beside = run_cli("tail", "-n", "2", "--json", f"vt:{db}")
    assert beside.code == 0, beside.err
    assert episode_ids(beside.out) == episode_ids(run_cli("tail", "-n", "2", "--json", db).out)
    assert len(kept()) == 1
    # Episodes pour in while tail -f reads them; it is killed in the middle.
    for number in range(100, 140):
        add_episode(db, 1, episode_num=number)
    lines.take(2)
    follower.send_signal(signal.SIGKILL)
    follower.wait(10)
    wait_for(lambda: not one_kept()["lent"], what="the reader given back")
    for number in range(140, 150):
        add_episode(db, 1, episode_num=number)
    after = run_cli("tail", "-n", "30", "--json", f"vt:{db}")
    assert after.code == 0, after.err
    local = run_cli("tail", "-n", "30", "--json", db)
    ids = episode_ids(after.out)
    assert ids == episode_ids(local.out)
    assert len(ids) == len(set(ids)) == 30
    assert one_kept()["ssh"] == reader["ssh"]


def test_a_kept_reader_ends_when_idle_and_with_cache_clear(
    keeping: SshServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = copy_sample(tmp_path / "r")
    monkeypatch.setenv(launch.KEEP_ENV, "1")
    assert run_cli("tail", "-n", "1", f"vt:{db}").code == 0
    reader = one_kept()
    wait_for(lambda: not kept(), timeout=10, what="the keeper's end")
    wait_for(lambda: not alive(reader["pid"]) and not alive(reader["ssh"]), what="their end")
    assert not list(control_dir().glob("k-*"))  # its socket removed
    # `cache clear` ends one at once.
    monkeypatch.setenv(launch.KEEP_ENV, "30")
    assert run_cli("tail", "-n", "1", f"vt:{db}").code == 0
    reader = one_kept()
    cleared = run_cli("cache", "clear")
    assert "ended 1 kept reader" in cleared.err
    wait_for(lambda: not alive(reader["pid"]) and not alive(reader["ssh"]), what="their end")
    assert not kept()
    # A command with keeping off leaves nothing behind.
    monkeypatch.setenv(launch.KEEP_ENV, "0")
    assert run_cli("tail", "-n", "1", f"vt:{db}").code == 0
    assert not kept()


def test_a_reader_whose_host_went_away_is_not_used(keeping: SshServer, tmp_path: Path) -> None:
    """The kept reader's connection dies while it is kept: the next command connects itself
    at once and says nothing of it."""
    db = copy_sample(tmp_path / "r")
    assert run_cli("tail", "-n", "1", f"vt:{db}").code == 0
    reader = one_kept()
    os.kill(reader["ssh"], signal.SIGKILL)
    again = run_cli("tail", "-n", "1", "--json", f"vt:{db}")
    assert again.code == 0, again.err
    assert episode_ids(again.out) == episode_ids(run_cli("tail", "-n", "1", "--json", db).out)
    assert again.err == ""
    new = one_kept()
    assert new["ssh"] != reader["ssh"]


# A Python that another user may run (this one may live in root's home).
OUTSIDER_PYTHON = shutil.which("python3", path="/usr/bin:/bin")


def test_a_kept_reader_that_hangs_is_ended_and_not_waited_for(
    keeping: SshServer, tmp_path: Path
) -> None:
    """The kept reader hangs (stopped on its host, as on a network gone silent): the next
    command ends it after AGAIN_WAIT and connects itself, rather than wait for ssh's
    keepalives (45 s)."""
    db = copy_sample(tmp_path / "r")
    assert run_cli("tail", "-n", "1", f"vt:{db}").code == 0
    reader = one_kept()
    (hung,) = keeping.readers()
    os.kill(hung, signal.SIGSTOP)
    try:
        again = run_cli("tail", "-n", "1", "--json", f"vt:{db}")
        assert again.code == 0, again.err
        wanted = run_cli("tail", "-n", "1", "--json", db)
        assert episode_ids(again.out) == episode_ids(wanted.out)
        wait_for(lambda: not alive(reader["pid"]), what="the keeper of the hung reader ended")
        assert one_kept()["ssh"] != reader["ssh"]  # the new connection is the one kept now
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(hung, signal.SIGKILL)


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to run a process as another user")
@pytest.mark.skipif(OUTSIDER_PYTHON is None, reason="no system python3 for another user to run")
def test_another_user_cannot_borrow_a_kept_reader(keeping: SshServer, tmp_path: Path) -> None:
    assert OUTSIDER_PYTHON is not None
    db = copy_sample(tmp_path / "r")
    assert run_cli("tail", "-n", "1", f"vt:{db}").code == 0
    one_kept()
    (path,) = control_dir().glob("k-*")
    assert path.stat().st_mode & 0o777 == 0o600
    assert control_dir().stat().st_mode & 0o777 == 0o700
    attempt = (
        "import socket,sys\n"
        "s=socket.socket(socket.AF_UNIX)\n"
        "s.settimeout(3)\n"
        "try:\n"
        "    s.connect(sys.argv[1]); s.sendall(b'b')\n"
        "    said, fds, _, _ = socket.recv_fds(s, 32, 2)\n"
        "    print('got', said, len(fds))\n"
        "except OSError as exc:\n"
        "    print('refused', type(exc).__name__)\n"
    )

    def borrow_as_nobody(path: Path) -> str:
        assert OUTSIDER_PYTHON is not None
        command = [OUTSIDER_PYTHON, "-I", "-c", attempt, str(path)]
        done = subprocess.run(command, user=65534, capture_output=True, text=True, timeout=10)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    assert borrow_as_nobody(path) == "refused PermissionError"  # the folder is ours alone
    # Were the socket where they can reach it (a hard link in a folder open to all), the
    # keeper asks who is at the other end: it answers nothing and lends nothing.
    shared = Path(tempfile.mkdtemp())
    try:
        shared.chmod(0o777)
        os.link(path, shared / "k")
        os.chmod(shared / "k", 0o666)
        # Reached (not PermissionError), and closed without a word (before or after the ask
        # was written, as the two processes happen to run).
        answered = borrow_as_nobody(shared / "k")
        closed = ("got b'' 0", "refused ConnectionResetError", "refused BrokenPipeError")
        assert answered in closed, answered
    finally:
        shutil.rmtree(shared)
    assert one_kept()["lent"] is False


def test_the_reader_starts_again_after_what_the_last_user_left(tmp_path: Path) -> None:
    """The reader itself, without ssh: after a request cut in the middle and answers nobody
    read, `again` gives hello with its word, then every database of its new sources announced
    anew, then synced; its requests are answered under the new numbers."""
    db = copy_sample(tmp_path / "r")
    other = copy_sample(tmp_path / "other")
    reader = subprocess.Popen(
        [sys.executable, "-I", "-S", "-c", launch.BOOTSTRAP],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert reader.stdin is not None
    assert reader.stdout is not None
    lines = Lines(reader.stdout)
    try:
        reader.stdin.write(launch.program([str(db)]))
        reader.stdin.flush()
        said = [json.loads(line) for line in lines.take(4)]
        assert [m["t"] for m in said[:2]] == ["hello", "db"]
        key = said[1]["k"]
        ask = b'{"q": 1, "k": %d, "sql": "SELECT count(*) FROM episode"}\n' % key
        reader.stdin.write(ask + ask.replace(b'"q": 1', b'"q": 2')[:20])  # the second cut
        again = {"again": "w0rd", "specs": [str(other)]}  # another user, other sources
        reader.stdin.write(b"\n" + json.dumps(again).encode() + b"\n")
        reader.stdin.flush()
        lines.first('"again":"w0rd"')
        # As the link does: asked once the host has said which databases it holds.
        wait_for(lambda: sum('"synced"' in line for line in lines.drain()) == 2)
        reader.stdin.write(ask.replace(b'"q": 1', b'"q": 7'))
        reader.stdin.flush()
        lines.first('"n":7')
        messages = [json.loads(line) for line in lines.lines]
        start = next(i for i, m in enumerate(messages) if m.get("again") == "w0rd")
        before, after = messages[:start], messages[start:]
        assert {"t": "a", "n": 1, "rows": [[220]]} in before  # answered, left unread
        assert any(m["t"] == "error" for m in before)  # the cut request
        kinds = [m["t"] for m in after]
        assert kinds[:2] == ["hello", "db"]
        assert after[1]["k"] == 0
        assert after[1]["path"] == str(other)
        assert "synced" in kinds
        assert after[-1] == {"t": "a", "n": 7, "rows": [[220]]}
    finally:
        reader.stdin.close()
        reader.wait(10)
