"""One browser tab's process: the app, as the server starts it (no shell involved).

    python -m velora_tui.serve.tab [--poll] [--remote-python PROGRAM] -- SOURCE...

Every argument after `--` is a source exactly as given (a path, or a remote `host:path`): a
name may hold `$(...)`, `;`, quotes or spaces, or start with `-`. The app runs as
`velora-tui open` runs it, drawing through Textual's web driver (textual-serve sets
TEXTUAL_DRIVER), and ends when the server goes away however that happens (a server killed
with SIGKILL cannot end it).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

USAGE = "usage: python -m velora_tui.serve.tab [--poll] [--remote-python PROGRAM] -- SOURCE..."
DEFAULT_PYTHON = "python3"
# How often the process looks whether its server is still there.
PARENT_CHECK_INTERVAL = 1.0


def command(
    sources: Sequence[Path | str], poll: bool, remote_python: str = DEFAULT_PYTHON
) -> list[str]:
    """The argument list that starts a tab's process (run without a shell)."""
    options = ["--poll"] if poll else []
    if remote_python != DEFAULT_PYTHON:
        options += ["--remote-python", remote_python]
    return [sys.executable, "-m", "velora_tui.serve.tab", *options, "--", *map(str, sources)]


def parse(argv: Sequence[str]) -> tuple[bool, str, list[Path | str]]:
    """(poll, remote python, sources) from the arguments `command` builds; SystemExit(2)
    otherwise. A remote source stays text (`ssh://h/x` is no path: Path would fold its //)."""
    from velora_tui.remote.address import looks_remote

    if "--" not in argv:
        raise SystemExit(USAGE)
    split = list(argv).index("--")
    options, sources = list(argv[:split]), list(argv[split + 1 :])
    poll = options[:1] == ["--poll"]
    rest = options[1:] if poll else options
    remote_python = DEFAULT_PYTHON
    if len(rest) == 2 and rest[0] == "--remote-python" and rest[1]:
        remote_python, rest = rest[1], []
    if rest or not sources:
        raise SystemExit(USAGE)
    return poll, remote_python, [s if looks_remote(s) else Path(s) for s in sources]


def leave_with(parent: int) -> None:
    """Once the server is gone (the process is handed to another parent), SIGTERM this
    process, which the app's exit guard (runtime.guard_exit) turns into a clean exit: without
    it an app whose pipes are gone would stay behind."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_INTERVAL)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="velora-tui server watch", daemon=True).start()


def main(argv: Sequence[str] | None = None) -> None:
    poll, remote_python, sources = parse(sys.argv[1:] if argv is None else argv)
    remote = [s for s in sources if isinstance(s, str)]
    if remote:  # connected while the app is imported (remote/launch.py)
        from velora_tui.remote import launch

        launch.keep_readers()  # the next tab on these sources borrows its readers
        launch.head_start(["--remote-python", remote_python, "--", *remote])
    from velora_tui.tui import runtime
    from velora_tui.tui.app import make_app
    from velora_tui.tui.settings import Settings

    app = make_app(sources, Settings(poll=poll), remote_python)
    runtime.prepare(app.exit_from_thread, app.settings.on_exit)
    leave_with(os.getppid())  # after prepare: the thread inherits its blocked signals
    app.run()


if __name__ == "__main__":
    main()
