"""The app in a real terminal (a pty): SIGHUP (SSH dropped) and SIGTERM end it cleanly, and the
demo's simulator goes with it."""

from __future__ import annotations

import contextlib
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.processes import Terminal, child_env, python_command

pytestmark = pytest.mark.ui


def children_of(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def drain(fd: int, seconds: float, until: bytes | None = None) -> bytes:
    """Read what the app draws (a pty must be read or the app blocks writing to it) for
    `seconds`, or until it has drawn `until`."""
    out = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and (until is None or until not in out):
        ready, _, _ = select.select([fd], [], [], 0.05)
        if ready:
            try:
                out += os.read(fd, 65536)
            except OSError:
                break
    return out


@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGTERM], ids=["SIGHUP", "SIGTERM"])
def test_demo_ends_cleanly_with_its_simulator(signum: int) -> None:
    main, secondary = pty.openpty()
    env = {**child_env(), "TERM": "xterm-256color", "COLUMNS": "100", "LINES": "30"}
    app = subprocess.Popen(
        python_command("demo"),
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        env=env,
        start_new_session=True,
    )
    os.close(secondary)
    try:
        # Until it has drawn (4 s was too little once, beside the other tests on 2 cores).
        screen = drain(main, 30.0, until=b"velora-tui")
        assert b"velora-tui" in screen
        deadline = time.monotonic() + 20
        while not (simulators := children_of(app.pid)) and time.monotonic() < deadline:
            drain(main, 0.2)
        assert simulators, "the demo started no simulator"
        app.send_signal(signum)
        drain(main, 0.5)
        assert app.wait(timeout=10) == 0
        deadline = time.monotonic() + 10
        while any(alive(pid) for pid in simulators) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(alive(pid) for pid in simulators), "the simulator outlived the app"
    finally:
        if app.poll() is None:
            app.kill()
            app.wait()
        os.close(main)


# A session leader that outlives a hang-up without passing SIGHUP on, as `make demo` does
# (make waits for its children) and as other wrappers may.
WRAPPER = (
    "import signal, subprocess, sys; signal.signal(signal.SIGHUP, lambda *a: None);"
    " sys.exit(subprocess.call(sys.argv[1:]))"
)


def test_demo_ends_when_its_terminal_goes_away() -> None:
    """SSH dropped or the tmux pane killed: the terminal itself closes. The kernel sends SIGHUP
    only to the session leader, here a wrapper that does not pass it on, and every later write
    to the terminal fails. Textual's output thread died on the first failed write and the app's
    next frames waited for it forever (seen under `make demo`: the app left at 28-60% of a
    core, its simulator still writing). The app must end by itself, and its simulator too."""
    terminal = Terminal([sys.executable, "-c", WRAPPER, *python_command("demo")], size=(120, 40))
    try:
        assert terminal.wait_for("velora-tui", 0, 20), "the demo did not start"
        time.sleep(1.5)  # drawing live rows
        [app] = children_of(terminal.proc.pid)
        simulators = children_of(app)
        assert simulators, "the demo started no simulator"
        os.close(terminal.master)  # what sshd or tmux does
        deadline = time.monotonic() + 15
        while any(alive(pid) for pid in (app, *simulators)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not alive(app), "the app outlived its terminal"
        assert not any(alive(pid) for pid in simulators), "the simulator outlived the app"
    finally:
        for pid in (terminal.proc.pid, *children_of(terminal.proc.pid)):
            for child in children_of(pid):
                with contextlib.suppress(OSError):
                    os.kill(child, signal.SIGKILL)
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        terminal.proc.wait(timeout=10)


# A parent that starts the demo's writer and dies at once, before the writer has looked at who
# its parent is: the writer must still stop.
QUICK_PARENT = (
    "import os, subprocess, sys;"
    " p = subprocess.Popen([*sys.argv[1:], '--parent-pid', str(os.getpid())],"
    " stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL);"
    " print(p.pid, flush=True); os._exit(0)"
)


def test_the_demos_writer_stops_when_its_app_died_while_it_started(tmp_path: Path) -> None:
    """Before, the writer took its parent from os.getppid() once started: an app killed in
    that moment (a quick Ctrl-C, or SIGKILL) left it writing for 12 minutes, then waiting for
    good. It is told its parent's pid now."""
    db = tmp_path / "metrics.db"
    writer = [*python_command("simulate", db, "--episodes", "3000", "--rate", "4")]
    started = subprocess.run(
        [sys.executable, "-c", QUICK_PARENT, *writer],
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=30,
        check=True,
    )
    pid = int(started.stdout.split()[0])
    deadline = time.monotonic() + 15
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(pid), "the writer outlived the process that started it"
