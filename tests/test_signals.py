"""The app in a real terminal (a pty): SIGHUP (SSH dropped) and SIGTERM end it cleanly, and the
demo's simulator goes with it."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import child_env, python_command

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


def drain(fd: int, seconds: float) -> bytes:
    """Read what the app draws (a pty must be read or the app blocks writing to it)."""
    out = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
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
        screen = drain(main, 4.0)
        assert b"velora-tui" in screen
        simulators = children_of(app.pid)
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
