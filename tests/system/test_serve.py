"""`velora-tui serve` over plain HTTP and websockets: the token, the cookie, the Origin, the
session limit, source paths that a shell would read, and app processes that end.

The server runs as `velora-tui serve` does (a process, tests.support.Served); these tests speak
to it with aiohttp's client, as a browser or an attacker's script would. What a real browser
sees is in tests/system/test_serve_browser.py.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import aiohttp
import pytest

from tests.support.browser import TAB_MODULE, Served, command_line
from tests.support.databases import MakeDb, RunSpec
from tests.support.processes import child_env, python_command
from tests.support.sshd import SshServer
from tests.support.waiting import until

pytestmark = pytest.mark.ui  # each session runs the Textual app

Serve = Callable[..., Served]
FOREIGN = "http://evil.example"


def cookie(served: Served, token: str | None = None) -> dict[str, str]:
    return {"Cookie": f"velora_tui_{served.port}={served.token if token is None else token}"}


def ws_headers(served: Served, origin: str | None = None) -> dict[str, str]:
    return {**cookie(served), "Origin": origin or served.origin}


@asynccontextmanager
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    # No cookie jar: every request says what it carries.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
        yield session


async def screen_text(
    ws: aiohttp.ClientWebSocketResponse, *needles: str, timeout: float = 30.0
) -> str:
    """What the app wrote to this websocket until every needle has come (terminal output)."""
    received = b""
    deadline = time.monotonic() + timeout
    while not all(needle.encode() in received for needle in needles):
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"{needles} not received in {timeout} s: {received[-300:]!r}")
        try:
            message = await asyncio.wait_for(ws.receive(), left)
        except TimeoutError:
            continue
        if message.type is aiohttp.WSMsgType.BINARY:
            received += message.data
        elif message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
            raise AssertionError(f"the websocket closed: {message.extra}; got {received[-300:]!r}")
    return received.decode("utf-8", "replace")


# -- the token ---------------------------------------------------------------------------------


async def test_the_token_in_the_url_becomes_a_cookie_and_leaves_the_url(
    serve: Serve, sample_db: Path
) -> None:
    served = serve([sample_db])
    assert served.url.startswith("http://127.0.0.1:")
    assert len(served.token) >= 40  # secrets.token_urlsafe(32)
    async with client() as http:
        first = await http.get(f"{served.url}&fontsize=20", allow_redirects=False)
        assert first.status == 303
        assert first.headers["Location"] == "/?fontsize=20"
        set_cookie = first.headers["Set-Cookie"]
        assert f"velora_tui_{served.port}={served.token}" in set_cookie
        assert "HttpOnly" in set_cookie
        assert "SameSite=Strict" in set_cookie
        page = await http.get(f"{served.base}/?fontsize=20", headers=cookie(served))
        assert page.status == 200
        body = await page.text()
        assert 'data-font-size="20"' in body
        assert served.token not in body
        assert "fonts.googleapis" not in body
        assert "default-src 'none'" in page.headers["Content-Security-Policy"]
        assert page.headers["Referrer-Policy"] == "no-referrer"
    # The URL is printed once, on stdout; the log never holds the token.
    assert served.token not in served.log_text()


@pytest.mark.parametrize(
    "path", ["/", "/ws", "/static/js/textual.js", "/velora/page.js", "/download/x", "/nothing"]
)
async def test_without_the_token_every_path_is_refused_and_nothing_starts(
    serve: Serve, sample_db: Path, path: str
) -> None:
    served = serve([sample_db])
    async with client() as http:
        none = await http.get(served.base + path, headers={"Origin": served.origin})
        assert none.status == 401
        assert "needs the token" in await none.text()
        wrong = await http.get(
            served.base + path, headers={**cookie(served, "x" * 43), "Origin": served.origin}
        )
        assert wrong.status == 403
        in_query = await http.get(f"{served.base}{path}?token={served.token[:-1]}")
        assert in_query.status == 403
        # A prefix of the token, or the token with more after it, is just as wrong.
        longer = await http.get(served.base + path, headers=cookie(served, served.token + "A"))
        assert longer.status == 403
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(f"{served.base}/ws", headers={"Origin": served.origin})
        assert refused.value.status == 401
    await asyncio.sleep(0.5)
    assert served.tabs() == set()
    assert "session started" not in served.log_text()


async def test_a_fixed_token_from_a_file_or_the_environment(
    serve: Serve, sample_db: Path, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("file-token-0123456789abcdef\n")
    from_file = serve([sample_db], args=["--token-file", str(token_file)])
    assert from_file.token == "file-token-0123456789abcdef"
    from_env = serve([sample_db], env={"VELORA_TUI_TOKEN": "env-token-0123456789abcdef"})
    assert from_env.token == "env-token-0123456789abcdef"
    async with client() as http:
        for served in (from_file, from_env):
            page = await http.get(f"{served.base}/", headers=cookie(served))
            assert page.status == 200
            refused = await http.get(f"{served.base}/", headers=cookie(served, "a" * 26))
            assert refused.status == 403


@pytest.mark.parametrize(
    ("token", "error"),
    [("short", "16 to 512 characters"), ("has spaces in it but long", "16 to 512 characters")],
)
def test_a_token_that_cannot_be_used_is_a_usage_error(
    sample_db: Path, tmp_path: Path, token: str, error: str
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(token)
    result = subprocess.run(
        python_command("serve", "--port", "0", "--token-file", token_file, sample_db),
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=60,
    )
    assert result.returncode == 2
    assert error in result.stderr
    assert result.stdout == ""


def test_another_address_is_warned_about_and_still_needs_the_token(
    serve: Serve, sample_db: Path
) -> None:
    served = serve([sample_db], args=["--host", "0.0.0.0"])
    assert "warning: listening on 0.0.0.0, reachable from other machines" in served.log_text()
    import urllib.error
    import urllib.request

    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{served.base}/", timeout=10)
    assert refused.value.code == 401


def test_the_default_address_is_loopback_and_says_nothing(serve: Serve, sample_db: Path) -> None:
    served = serve([sample_db])
    assert served.url.startswith("http://127.0.0.1:")
    assert "warning" not in served.log_text()


def test_a_port_in_use_is_one_line(serve: Serve, sample_db: Path) -> None:
    served = serve([sample_db])
    result = subprocess.run(
        python_command("serve", "--port", str(served.port), sample_db),
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.startswith(f"velora-tui: cannot listen on 127.0.0.1:{served.port}: ")
    assert "Traceback" not in result.stderr


# -- the websocket -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "origin", [FOREIGN, "null", "http://127.0.0.1:1", "http://127.0.0.1.evil.example", ""]
)
async def test_a_foreign_origin_is_refused_even_with_the_cookie(
    serve: Serve, sample_db: Path, origin: str
) -> None:
    served = serve([sample_db])
    headers = cookie(served) if not origin else ws_headers(served, origin)
    async with client() as http:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            # aiohttp sends no Origin of its own: "" means none at all.
            await http.ws_connect(f"{served.base}/ws", headers=headers)
        assert refused.value.status == 403
    await asyncio.sleep(0.5)
    assert served.tabs() == set()


async def test_the_app_runs_behind_the_checks_and_ends_with_its_websocket(
    serve: Serve, sample_db: Path
) -> None:
    served = serve([sample_db])
    async with client() as http:
        ws = await http.ws_connect(
            f"{served.base}/ws?width=120&height=40", headers=ws_headers(served)
        )
        await screen_text(ws, "NeuroFlowCT", "InvertedPendulum-v5")
        (pid,) = served.tabs()
        await ws.close()
        took = await until(
            lambda: TAB_MODULE not in command_line(pid), "the app to end with its tab", 5.0
        )
        await until(lambda: "session ended" in served.log_text(), "its log line", 5.0)
    assert took < 5.0


async def test_whatever_the_page_sends_never_ends_the_session(
    serve: Serve, sample_db: Path
) -> None:
    served = serve([sample_db])
    async with client() as http:
        ws = await http.ws_connect(
            f"{served.base}/ws?width=120&height=40", headers=ws_headers(served)
        )
        await screen_text(ws, "NeuroFlowCT")
        for junk in [
            "not json",
            "{}",
            "[]",
            '["stdin"]',
            '["stdin", 5]',
            '["resize", {"width": "x", "height": 10}]',
            '["resize", {"width": 100000000000, "height": -1}]',
            '["resize", {"width": true, "height": true}]',
            '["ping", {"a": 1}]',
            '["unknown", 1]',
            '["stdin", "\\ud800"]',
            '["stdin", ""]',
            '["a", "b", "c"]',
        ]:
            await ws.send_str(junk)
        await ws.send_bytes(b"\x00\xff")
        # Still the same app, still answering: `?` opens its help screen.
        await ws.send_str('["stdin", "?"]')
        await screen_text(ws, "Experiment list")
        assert len(served.tabs()) == 1
        await ws.close()


async def test_the_session_limit_tells_the_next_one_why(serve: Serve, sample_db: Path) -> None:
    served = serve([sample_db], args=["--max-sessions", "2"])
    async with client() as http:
        url = f"{served.base}/ws"
        first = await http.ws_connect(url, headers=ws_headers(served))
        second = await http.ws_connect(url, headers=ws_headers(served))
        await screen_text(first, "NeuroFlowCT")
        await screen_text(second, "NeuroFlowCT")
        third = await http.ws_connect(url, headers=ws_headers(served))
        message = await third.receive(timeout=10)
        assert message.type is aiohttp.WSMsgType.CLOSE
        assert third.close_code == 1013  # try again later
        assert "2 of 2 sessions are open (--max-sessions)" in str(message.extra)
        page = await http.get(f"{served.base}/", headers=cookie(served))
        assert page.status == 503
        assert "2 of 2 sessions are open" in await page.text()
        assert len(served.tabs()) == 2
        await first.close()
        await until(
            lambda: "session ended" in served.log_text(), "the first tab's place to be free", 5.0
        )
        fourth = await http.ws_connect(url, headers=ws_headers(served))
        await screen_text(fourth, "NeuroFlowCT")
        await second.close()
        await fourth.close()
    assert "refused a session: 2 of 2 sessions are open" in served.log_text()


def new_tab(served: Served, seen: frozenset[int]) -> bool:
    """Whether an app process is running that is none of `seen`."""
    return bool(served.tabs() - seen)


@pytest.mark.parametrize(
    "cycles", [12, pytest.param(50, marks=pytest.mark.soak)], ids=["12-tabs", "50-tabs"]
)
async def test_open_close_cycles_leave_no_process(
    serve: Serve, sample_db: Path, cycles: int
) -> None:
    """Half the tabs close while their app is still starting, half once it has drawn (each
    cycle starts an app process: 12 in `make test`, 50 in the soak run)."""
    served = serve([sample_db])
    seen: set[int] = set()
    async with client() as http:
        for cycle in range(cycles):
            ws = await http.ws_connect(f"{served.base}/ws", headers=ws_headers(served))
            if cycle % 2:
                await screen_text(ws, "NeuroFlowCT")
            else:
                await until(partial(new_tab, served, frozenset(seen)), "its app to start", 10.0)
            seen |= served.tabs()
            await ws.close()
    await until(lambda: not served.tabs(), "every app to end", 5.0)
    assert len(seen) >= cycles
    assert not [pid for pid in seen if TAB_MODULE in command_line(pid)]
    await until(
        lambda: served.log_text().count("session ended") == cycles, "every session's end", 5.0
    )


# -- source paths and processes ----------------------------------------------------------------


async def test_source_paths_never_reach_a_shell(
    serve: Serve, make_db: MakeDb, tmp_path: Path
) -> None:
    marker = tmp_path / "touched"
    names = [
        f"runs/$(touch {marker})",
        f"a;touch {marker};b",
        'it\'s "quoted"',
        "with  spaces `touch x`",
        "-starts-with-a-dash",
    ]
    sources = []
    for index, name in enumerate(names):
        folder = tmp_path / "data" / name
        make_db(folder / "metrics.db", [RunSpec(planned=5, agent=f"Agent{index}x")])
        sources.append(f"data/{name}")
    served = serve(sources, cwd=tmp_path)
    async with client() as http:
        ws = await http.ws_connect(
            f"{served.base}/ws?width=160&height=50", headers=ws_headers(served)
        )
        await screen_text(ws, *(f"Agent{index}x" for index in range(len(names))))
        (pid,) = served.tabs()
        arguments = command_line(pid)
        assert arguments[arguments.index("--") + 1 :] == sources
        await ws.close()
    assert not marker.exists()
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
async def test_the_apps_end_with_the_server_however_it_ends(
    serve: Serve, sample_db: Path, how: signal.Signals
) -> None:
    """SIGTERM: the server ends them. SIGKILL: each notices its server is gone and exits."""
    served = serve([sample_db])
    async with client() as http:
        sockets = [
            await http.ws_connect(f"{served.base}/ws", headers=ws_headers(served)) for _ in range(2)
        ]
        for ws in sockets:
            await screen_text(ws, "NeuroFlowCT")
        tabs = served.tabs()
        assert len(tabs) == 2
        os.kill(served.proc.pid, how)
        await until(
            lambda: all(TAB_MODULE not in command_line(pid) for pid in tabs),
            f"the apps to end after {how.name}",
            10.0,
        )
        await until(lambda: served.proc.poll() is not None, "the server to end", 10.0)


async def test_a_source_path_is_text_in_the_page(serve: Serve, tmp_path: Path) -> None:
    """The page's title names the sources: as text, never markup."""
    name = "<img src=x onerror=alert(1)>{{font_size}}"
    served = serve([name], cwd=tmp_path)  # it need not exist: the app waits for it
    async with client() as http:
        page = await http.get(f"{served.base}/", headers=cookie(served))
        body = await page.text()
    assert "&lt;img src=x onerror=alert(1)&gt;{{font_size}}" in body
    assert "<img" not in body


async def test_poll_reaches_each_tabs_app(serve: Serve, sample_db: Path) -> None:
    served = serve([sample_db], args=["--poll"])
    async with client() as http:
        ws = await http.ws_connect(
            f"{served.base}/ws?width=120&height=40", headers=ws_headers(served)
        )
        await screen_text(ws, "polling", "NeuroFlowCT")
        (pid,) = served.tabs()
        arguments = command_line(pid)
        assert arguments[arguments.index("--") - 1] == "--poll"
        await ws.close()


async def test_a_remote_source_in_the_page(serve: Serve, sshd: SshServer, sample_db: Path) -> None:
    """A tab's app reads a source on another host (through the test's sshd) like a local one."""
    source = f"ssh://vt{sample_db}"
    served = serve([source])
    async with client() as http:
        ws = await http.ws_connect(
            f"{served.base}/ws?width=160&height=50", headers=ws_headers(served)
        )
        await screen_text(ws, "NeuroFlowCT", "connected")
        (pid,) = served.tabs()
        arguments = command_line(pid)
        assert arguments[arguments.index("--") + 1 :] == [source]
        await ws.close()


@pytest.mark.parametrize(
    "path",
    ["//evil.example/", "///evil.example/x", "/\\evil.example/", "/%2F%2Fevil.example/", "/\t/e"],
)
async def test_the_redirect_after_the_token_stays_on_this_server(
    serve: Serve, sample_db: Path, path: str
) -> None:
    """A path that a browser reads as another host (`//host`, `/\\host`) is not sent back as
    the Location: it would take the token's redirect off-site."""
    served = serve([sample_db])
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    request = f"GET {path}?token={served.token}&a=1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    writer.write(request.encode())
    await writer.drain()
    head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)).decode("latin-1")
    writer.close()
    await writer.wait_closed()
    status = head.split()[1]
    if status == "400":  # the server's HTTP parser refuses it (a raw tab): nowhere to go
        return
    assert status == "303", head
    location = next(
        line.split(":", 1)[1].strip()
        for line in head.split("\r\n")
        if line.lower().startswith("location:")
    )
    assert location.startswith("/")
    assert not location.startswith(("//", "/\\")), location
    assert location.endswith("?a=1")
    assert served.token not in location
