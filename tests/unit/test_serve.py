"""`velora-tui serve` over plain HTTP and websockets: the token, the cookie, the Origin, the
session limit, source paths that a shell would read, and app processes that end.

The server runs as `velora-tui serve` does (a process, tests.support.Served); these tests speak
to it with aiohttp's client, as a browser or an attacker's script would. What a real browser
sees is in tests/system/test_serve_browser.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from velora_tui.serve import tab

pytestmark = pytest.mark.ui  # each session runs the Textual app


def test_a_tabs_arguments_keep_remote_sources_and_the_remote_python() -> None:
    sources: list[Path | str] = [Path("runs/a b"), "ssh://gpu1:2222/~/runs", "gpu2:runs/"]
    argv = tab.command(sources, poll=True, remote_python="/opt/py/bin/python3")
    poll, remote_python, parsed = tab.parse(argv[3:])
    assert (poll, remote_python) == (True, "/opt/py/bin/python3")
    assert parsed == sources  # `ssh://` kept as text: a Path would fold its //
    assert tab.parse(tab.command(["x"], poll=False)[3:]) == (False, "python3", [Path("x")])
    for bad in (["--remote-python", "--", "x"], ["--colour", "--", "x"], ["--"], ["x"]):
        with pytest.raises(SystemExit):
            tab.parse(bad)
