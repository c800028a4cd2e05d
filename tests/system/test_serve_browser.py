"""`velora-tui serve` in a real browser: the OS's Chromium driven by Playwright.

xterm.js draws the app on a canvas, so its text is not in the page's DOM: these tests read the
websocket frames the page receives (the app's screen as terminal output) and look at
screenshots. Skipped, saying why, where Chromium or the playwright package is missing.
"""

from __future__ import annotations

import http.server
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.support.browser import (
    CHROMIUM_ARGS,
    TAB_MODULE,
    PageFrames,
    Served,
    browser_missing,
    chromium_path,
    command_line,
    png_size_and_colours,
)
from tests.support.processes import Simulator
from tests.support.reading import query
from tests.support.waiting import wait_for

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

MISSING = browser_missing()
pytestmark = [pytest.mark.ui, pytest.mark.skipif(MISSING is not None, reason=str(MISSING))]

Serve = Callable[..., Served]
VIEWPORT = {"width": 1000, "height": 600}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser profile (no cookie) per test."""
    context = browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    yield context
    context.close()


def open_app(context: BrowserContext, served: Served) -> tuple[Page, PageFrames]:
    """A tab on the URL `serve` printed, once the app has drawn its list."""
    page = context.new_page()
    frames = PageFrames(page)
    page.goto(served.url)
    frames.wait_for("NeuroFlow")
    return page, frames


def app_gone(pid: int) -> bool:
    return TAB_MODULE not in command_line(pid)


def test_the_page_shows_the_experiments(
    serve: Serve, sample_db: Path, context: BrowserContext
) -> None:
    served = serve([sample_db])
    page, frames = open_app(context, served)
    frames.wait_for("NeuroFlowCT", "InvertedPendulum-v5", "CartPole-v1", "120/120", "60/60")
    assert page.url == f"{served.base}/"  # the token left the address bar
    (token_cookie,) = context.cookies()
    assert token_cookie["httpOnly"] is True
    assert token_cookie["sameSite"] == "Strict"
    page.wait_for_timeout(500)  # the terminal fades in over 0.3 s
    width, height, colours = png_size_and_colours(page.screenshot())
    assert (width, height) == (VIEWPORT["width"], VIEWPORT["height"])
    assert colours >= 8, f"a blank page: {colours} colours"
    assert page.evaluate("document.cookie") == ""  # HttpOnly: no script reads it


def test_keys_typed_into_the_page_open_an_experiment_and_switch_tabs(
    serve: Serve, sample_db: Path, context: BrowserContext
) -> None:
    served = serve([sample_db])
    page, frames = open_app(context, served)
    page.locator(".xterm-helper-textarea").focus()  # where xterm.js takes the keyboard
    start = frames.mark()
    page.keyboard.press("Enter")  # the highlighted experiment: the newest, #3
    frames.wait_for("#3", "Charts", "Episodes", "Config", start=start)
    start = frames.mark()
    page.keyboard.press("3")
    frames.wait_for("model_details", start=start)
    start = frames.mark()
    page.keyboard.press("2")
    frames.wait_for("Critic loss", start=start)
    start = frames.mark()
    page.keyboard.press("Escape")
    frames.wait_for("InvertedPendulum-v5", start=start)


def test_an_episode_committed_by_the_simulator_reaches_the_page(
    serve: Serve, simulator: Simulator, tmp_path: Path, context: BrowserContext
) -> None:
    db = tmp_path / "metrics.db"
    simulator(db, episodes=7777, rate=5.0)
    wait_for(lambda: db.exists() and bool(episode_count(db)), timeout=30, what="first episodes")
    served = serve([db])
    page, frames = open_app(context, served)
    frames.wait_for("/7777")
    committed = episode_count(db) + 3  # episodes committed after the page showed its list

    def shown() -> int:
        """The highest exact episode count the page was sent (the list is drawn at most 4
        times a second, so a count in between may never be drawn)."""
        counts = re.findall(r"(?<![~\d])(\d+)/7777", frames.text())
        return max(map(int, counts), default=0)

    deadline = time.monotonic() + 30
    while shown() < committed:
        assert time.monotonic() < deadline, f"shown {shown()}, committed {committed}"
        page.wait_for_timeout(50)


def episode_count(db: Path) -> int:
    try:
        rows = query(db, "SELECT count(*) FROM episode")
    except Exception:  # the simulator has not made its tables yet
        return 0
    return int(rows[0][0])


def test_no_token_or_a_wrong_one_is_refused_and_starts_nothing(
    serve: Serve, sample_db: Path, context: BrowserContext
) -> None:
    served = serve([sample_db])
    page = context.new_page()
    frames = PageFrames(page)
    response = page.goto(f"{served.base}/")
    assert response is not None
    assert response.status == 401
    response = page.goto(f"{served.base}/?token=not-{served.token}")
    assert response is not None
    assert response.status == 403
    page.wait_for_timeout(1000)
    assert frames.sockets == 0
    assert context.cookies() == []
    assert served.tabs() == set()


class AnotherSite(http.server.BaseHTTPRequestHandler):
    """A page of another site that tries to open the app's websocket (its port in the path)."""

    def do_GET(self) -> None:
        port = self.path.strip("/")
        body = (
            "<!DOCTYPE html><script>"
            f"const socket = new WebSocket('ws://127.0.0.1:{port}/ws');"
            "socket.onopen = () => { document.title = 'opened'; };"
            "socket.onclose = () => { document.title = 'refused'; };"
            "</script>"
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_a_page_of_another_site_cannot_drive_the_app(
    serve: Serve, sample_db: Path, context: BrowserContext
) -> None:
    served = serve([sample_db])
    page, _ = open_app(context, served)  # the browser holds the cookie now
    page.close()
    wait_for(lambda: not served.tabs(), timeout=5, what="the first tab's app to end")
    other = http.server.ThreadingHTTPServer(("127.0.0.1", 0), AnotherSite)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        attacker = context.new_page()
        attacker.goto(f"http://localhost:{other.server_address[1]}/{served.port}")
        attacker.wait_for_function("document.title !== ''", timeout=10_000)
        assert attacker.title() == "refused"
    finally:
        other.shutdown()
    assert served.tabs() == set()
    assert served.log_text().count("session started") == 1  # the real tab's only


def test_five_tabs_at_once_and_closing_them_ends_their_apps(
    serve: Serve, sample_db: Path, context: BrowserContext
) -> None:
    served = serve([sample_db], args=["--max-sessions", "5"])
    tabs = [open_app(context, served) for _ in range(5)]
    for _, frames in tabs:
        frames.wait_for("InvertedPendulum-v5")
    apps = served.tabs()
    assert len(apps) == 5
    sixth = context.new_page()
    response = sixth.goto(f"{served.base}/")
    assert response is not None
    assert response.status == 503
    assert "5 of 5 sessions are open (--max-sessions)" in sixth.content()
    sixth.close()
    for page, _ in tabs:
        page.close()
    started = time.monotonic()
    wait_for(lambda: all(app_gone(pid) for pid in apps), timeout=5, what="all 5 apps to end")
    assert time.monotonic() - started < 5


def test_closing_a_tab_ends_its_app_within_5_s(
    serve: Serve, sample_db: Path, context: BrowserContext
) -> None:
    served = serve([sample_db])
    page, _ = open_app(context, served)
    (pid,) = served.tabs()
    page.close()
    started = time.monotonic()
    wait_for(lambda: app_gone(pid), timeout=5, what="the app to end with its tab")
    assert time.monotonic() - started < 5


def test_every_request_the_page_makes_goes_to_the_server(
    serve: Serve, sample_db: Path, context: BrowserContext
) -> None:
    served = serve([sample_db])
    page = context.new_page()
    requests: list[str] = []
    sockets: list[str] = []
    console: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.on("websocket", lambda socket: sockets.append(socket.url))
    page.on("console", lambda message: console.append(message.text))
    frames = PageFrames(page)
    page.goto(served.url)
    frames.wait_for("NeuroFlowCT")
    page.locator(".xterm-helper-textarea").focus()
    page.keyboard.press("Enter")
    frames.wait_for("Charts")
    page.wait_for_timeout(1000)
    outside = [url for url in requests if not url.startswith(f"{served.base}/")]
    assert outside == []
    assert f"{served.base}/static/fonts/RobotoMono-VariableFont_wght.ttf" in requests
    assert len(sockets) == 1
    assert sockets[0].startswith(f"ws://127.0.0.1:{served.port}/ws?width=")
    refused = [text for text in console if "Content Security Policy" in text]
    assert refused == []


def test_quitting_the_app_in_the_page_ends_its_session_and_says_why(
    serve: Serve, sample_db: Path, context: BrowserContext
) -> None:
    """`q` quits the app; the page shows why its session ended (the websocket's close reason,
    page.js: how a tab refused for --max-sessions is told, tests/system/test_serve.py)."""
    served = serve([sample_db])
    page, _ = open_app(context, served)
    (pid,) = served.tabs()
    page.locator(".xterm-helper-textarea").focus()
    page.keyboard.press("q")
    page.locator("body.-closed").wait_for(timeout=10_000)  # (the CSP forbids string eval)
    assert page.locator("#closed-reason").inner_text() == "the app quit"
    wait_for(lambda: app_gone(pid), timeout=5, what="the app to end")
