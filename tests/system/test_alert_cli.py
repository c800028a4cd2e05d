"""`velora-tui alerts`, as a user runs it: a separate process on real SQLite files, a real
writer for `-f`, and real commands for `--exec` (each a script that writes what it got into a
file), including one that fails, one that hangs, and names made to run commands in a shell."""

from __future__ import annotations

import math
import os
import shlex
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path

from tests.support.cli import TIMEOUT, Lines, check_output, closed_pipe_run, run_cli, strict_json
from tests.support.databases import MakeDb, RunSpec, add_episode
from tests.support.folders import assert_unchanged
from tests.support.processes import Simulator, Spawn, child_env, python_command
from tests.support.waiting import wait_for

# Names that would run commands if they ever reached a shell.
SHELL_BAIT = ["$(touch {d}/pwned1)", "; touch {d}/pwned2 #", "`touch {d}/pwned3`", "|touch {d}/p4"]
JSON_FIELDS = {
    "time",
    "kind",
    "severity",
    "message",
    "db",
    "id",
    "agent",
    "env",
    "status",
    "episodes",
    "n_episodes",
    "last_activity",
    "nonfinite_episodes",
}


def recorder(folder: Path, name: str = "hook.py", *, code: int = 0, sleep: float = 0) -> str:
    """`--exec` for a script that appends its stdin (one JSON line) to folder/got.jsonl, its
    argv to folder/argv.txt and, for `sleep`, starts a child in its group, records its pid and
    waits for it."""
    script = folder / name
    script.write_text(
        "import os, subprocess, sys\n"
        f"folder = {str(folder)!r}\n"
        "data = sys.stdin.read()\n"
        "with open(os.path.join(folder, 'got.jsonl'), 'a') as out:\n"
        "    out.write(data)\n"
        "with open(os.path.join(folder, 'argv.txt'), 'a') as out:\n"
        "    out.write(repr(sys.argv) + '\\n')\n"
        f"if {sleep!r}:\n"
        f"    child = subprocess.Popen(['sleep', str({sleep!r})])\n"
        "    with open(os.path.join(folder, 'children.txt'), 'a') as out:\n"
        "        out.write(f'{child.pid}\\n')\n"
        "    child.wait()\n"
        f"sys.exit({code})\n"
    )
    return shlex.join([sys.executable, str(script), "--an argument with spaces"])


def hostile_sweep(make_db: MakeDb, folder: Path) -> Path:
    """#1 finished, #2 stalled an hour ago (shell bait in its agent name), #3 running with
    a NaN reward, #4 running fine."""
    folder.mkdir(parents=True, exist_ok=True)
    bait = " ".join(SHELL_BAIT).format(d=folder)
    runs = [
        RunSpec(planned=10),
        RunSpec(planned=100, write=20, agent=f"Evil {bait}\x1b]0;title\x07"),
    ]
    start = datetime.now() - timedelta(hours=1)
    db = make_db(folder / "metrics.db", runs, start=start, interval=timedelta(seconds=1))
    for exp_id in (3, 4):
        add_experiment(db, f"Live{exp_id}", planned=500)
        for num in range(1, 6):
            reward = math.inf if exp_id == 3 and num == 3 else float(num)
            add_episode(db, exp_id, episode_num=num, reward=reward)
    return db


def add_experiment(db: Path, agent: str, planned: int) -> None:
    import json
    import sqlite3

    config = json.dumps({"train_params": {"n_episodes": planned}})
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute(
            "INSERT INTO experiment (agent, env, config, created_at) VALUES (?, 'Env', ?, ?)",
            (agent, config, str(datetime.now())),
        )
    finally:
        conn.close()


def no_bait_ran(folder: Path) -> None:
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith("p")) == []
    assert not list(Path.cwd().glob("pwned*"))


def test_alerts_now_as_lines_and_json(make_db: MakeDb, tmp_path: Path) -> None:
    db = hostile_sweep(make_db, tmp_path / "run")
    with assert_unchanged(db.parent):
        text = run_cli("alerts", db)
        as_json = run_cli("alerts", db, "--json")
    assert text.code == 0
    assert as_json.code == 0
    assert text.err == ""
    assert as_json.err == ""
    # date, time, kind, then the message: by the list's order (running, then most recent)
    assert [line.split()[2:4] for line in text.lines] == [
        ["nonfinite", "#3"],
        ["stalled", "#2"],
        ["finished", "#1"],
    ]
    objects = [strict_json(line) for line in as_json.lines]
    assert {(o["id"], o["kind"]) for o in objects} == {
        (1, "finished"),
        (2, "stalled"),
        (3, "nonfinite"),
    }
    for data in objects:
        assert set(data) == JSON_FIELDS
        assert data["db"] == str(db)
        assert data["message"] in "".join(text.lines)
    evil = next(o for o in objects if o["id"] == 2)
    assert evil["agent"].startswith("Evil $(touch")
    assert "\x1b" not in evil["agent"]
    assert evil["severity"] == "warning"
    assert evil["status"] == "stalled"
    assert next(o for o in objects if o["id"] == 3)["nonfinite_episodes"] == 1
    check_output(text.out, as_json.out)
    no_bait_ran(tmp_path / "run")


def test_exec_gets_each_alert_as_json_on_stdin_never_in_argv(
    make_db: MakeDb, tmp_path: Path
) -> None:
    db = hostile_sweep(make_db, tmp_path / "run")
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    result = run_cli("alerts", db, "--json", "--exec", recorder(hooks))
    assert result.code == 0, result.err
    assert result.err == ""
    got = (hooks / "got.jsonl").read_text().splitlines()
    assert [strict_json(line) for line in got] == [strict_json(line) for line in result.lines]
    argvs = (hooks / "argv.txt").read_text().splitlines()
    assert len(argvs) == 3
    assert set(argvs) == {repr([str(hooks / "hook.py"), "--an argument with spaces"])}
    no_bait_ran(tmp_path / "run")
    no_bait_ran(hooks)


def test_a_failing_command_is_one_stderr_line_and_the_stream_goes_on(
    make_db: MakeDb, tmp_path: Path
) -> None:
    db = hostile_sweep(make_db, tmp_path / "run")
    result = run_cli("alerts", db, "--exec", recorder(tmp_path, code=3))
    assert result.code == 0
    assert len(result.lines) == 3
    name = Path(sys.executable).name
    assert result.err_lines == [f"velora-tui: --exec: {name} exited with status 3"] * 3
    assert len((tmp_path / "got.jsonl").read_text().splitlines()) == 3


def test_alerts_into_a_closed_pipe(make_db: MakeDb, tmp_path: Path, spawn: Spawn) -> None:
    db = hostile_sweep(make_db, tmp_path / "run")
    with assert_unchanged(db.parent):
        result = closed_pipe_run(spawn, "alerts", db, "--exec", recorder(tmp_path))
    assert result.code == 1
    assert result.err == ""
    assert not (tmp_path / "got.jsonl").exists()  # nothing printed, nothing handed over


def test_a_command_that_is_not_there_or_cannot_be_split(make_db: MakeDb, tmp_path: Path) -> None:
    db = hostile_sweep(make_db, tmp_path / "run")
    missing = run_cli("alerts", db, "--exec", "no-such-command-here --flag")
    assert (missing.code, missing.out) == (1, "")
    assert missing.err_lines == ["velora-tui: --exec: command not found: no-such-command-here"]
    unsplit = run_cli("alerts", db, "--exec", "echo 'unclosed")
    assert unsplit.code == 1
    assert unsplit.err.startswith("velora-tui: --exec: cannot split")


def test_follow_reports_only_what_happens_and_a_stall_by_the_clock(
    make_db: MakeDb, tmp_path: Path, spawn: Spawn
) -> None:
    """The first look only records (a finished run, inf/NaN in old rows: no alert); then a
    run's first NaN is reported (not another run's second), and a run that stalls with nothing
    written: its alert comes from the clock."""
    folder = tmp_path / "run"
    folder.mkdir()
    # #1 finished long ago, #2 last wrote 53 s ago (a stall at 60 s), #3 running, #4 running
    # with an old inf.
    start = datetime.now() - timedelta(seconds=62)
    runs = [RunSpec(planned=3), RunSpec(planned=100, write=5)]
    db = make_db(folder / "metrics.db", runs, start=start, interval=timedelta(seconds=1))
    add_experiment(db, "Live", planned=500)
    add_episode(db, 3, episode_num=1, reward=1.0)
    add_experiment(db, "OldBad", planned=500)
    add_episode(db, 4, episode_num=1, reward=math.inf)
    proc = spawn(
        python_command("alerts", "-f", "--json", db), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    out, err = Lines(proc.stdout), Lines(proc.stderr)
    time.sleep(1.5)  # the first look
    add_episode(db, 4, episode_num=2, reward=math.inf)
    add_episode(db, 3, episode_num=2, reward="NaN")  # as text: SQLite stores a float NaN as NULL
    first, second = (strict_json(line) for line in out.take(2, timeout=TIMEOUT))
    assert (first["id"], first["kind"]) == (3, "nonfinite")
    assert (second["id"], second["kind"]) == (2, "stalled")
    assert "no episode for 1 min" in second["message"]
    with assert_unchanged(folder):
        time.sleep(1.5)  # nothing is reported twice
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(TIMEOUT) == 0
    assert len(out.rest()) == 2
    assert err.rest() == []


def test_follow_with_a_writer_and_a_command_that_hangs(
    tmp_path: Path, spawn: Spawn, simulator: Simulator
) -> None:
    """Each alert is printed when it happens while the command for the one before still
    hangs; the hanging command and its child are killed after --exec-timeout; the stream
    goes on."""
    folder = tmp_path / "run"
    folder.mkdir()
    db = folder / "metrics.db"
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    command = recorder(hooks, sleep=60)
    proc = spawn(
        python_command("alerts", "-f", db, "--exec", command, "--exec-timeout", "4"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    out, err = Lines(proc.stdout), Lines(proc.stderr)
    [waiting] = err.take(1)
    assert "waiting" in waiting
    # Both runs written side by side for 8 s: they end together (the second alert comes while
    # the first one's command hangs), long after this reader has seen them start however busy
    # the machine is (a run seen first when already finished is only recorded).
    writer = simulator(db, episodes=40, rate=10, experiments=2, extra=["--parallel"])
    lines = out.take(2)
    printed = time.monotonic()
    assert writer.wait(TIMEOUT) == 0
    assert ["finished" in line for line in lines] == [True, True]
    assert "#1 NeuroFlow" in lines[0]
    assert "#2 NeuroFlowCT" in lines[1]
    # The second alert was printed while the first one's command still ran: not killed yet.
    assert not any("killed" in line for line in err.lines)

    # Other stderr lines may come first: the file's states while velora creates it.
    def kills() -> list[str]:
        return [line for line in err.lines if "--exec" in line]

    while len(kills()) < 2:
        err.take(len(err.lines) + 1)
    assert time.monotonic() - printed > 6  # 4 s each, one after the other
    name = Path(sys.executable).name
    assert kills() == [f"velora-tui: --exec: {name} killed after 4 s"] * 2
    children = [int(pid) for pid in (hooks / "children.txt").read_text().split()]
    assert len(children) == 2
    for pid in children:  # the whole group: the script's own child too
        wait_for(partial(gone, pid), timeout=5, what=f"child {pid} to be killed")
    with assert_unchanged(folder):
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(TIMEOUT) == 0
    assert len(out.rest()) == 2


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie (killed, not yet reaped by its parent's parent) counts as gone.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state == "Z"


PILE_UP = """
import sys, time
from velora_tui.cli.alerts import CommandRunner

runner = CommandRunner([sys.executable, "-c", "import time; time.sleep(60)"], 30, capacity=1)
runner.submit("{}\\n", "first", wait=False)
while runner.current is None:
    time.sleep(0.01)
started = runner.current
runner.submit("{}\\n", "second", wait=False)  # waits in the queue
runner.submit("{}\\n", "third", wait=False)  # finds it full
runner.close(finish=False)
print(started.wait(5))
"""


def test_alerts_that_pile_up_behind_a_slow_command(tmp_path: Path) -> None:
    """One runs, one waits, the next is not handed over (said on stderr); on exit what waits is
    dropped (said) and what runs is killed."""
    result = subprocess.run(
        [sys.executable, "-c", PILE_UP],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=child_env(),
    )
    name = Path(sys.executable).name
    assert result.stderr.splitlines() == [
        f"velora-tui: --exec: 1 alerts are already waiting for {name}; not run for: third",
        f"velora-tui: --exec: stopped before running {name} for 1 alerts",
        f"velora-tui: --exec: {name} killed: stopping",
    ]
    assert result.stdout.strip() == str(-signal.SIGKILL)
