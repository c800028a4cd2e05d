"""The server behind `velora-tui serve`: textual-serve's, with access checks and a session limit.

It binds its socket itself (so `--port 0` works and a port in use is one clear line), prints
the URL to open once, and on Ctrl-C, SIGTERM or SIGHUP (the SSH session it ran in closing)
ends every tab's process before it exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import signal
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web
from textual_serve.server import Server

from velora_tui.data.cleaning import clean_text
from velora_tui.serve import tab
from velora_tui.serve.access import (
    FOREIGN_ORIGIN,
    TOKEN_QUERY,
    Gate,
    add_security_headers,
    is_loopback,
    refusal,
    same_origin,
)
from velora_tui.serve.sessions import AppProcess, SessionLimit

PAGE = Path(__file__).resolve().parent / "page"
# A connection that stops answering (a laptop put to sleep, a tunnel cut) is noticed by
# websocket pings this often, and its app ended.
HEARTBEAT = 15.0
# Bounds on what the page may ask for: a terminal size in cells, a font size in pixels.
MAX_COLUMNS, MAX_ROWS = 1000, 500
FONT_SIZES = (6, 16, 48)
# How long stopping waits for requests still being answered (tabs are ended before this).
SHUTDOWN_TIMEOUT = 5.0


@dataclass(frozen=True)
class ServeOptions:
    sources: Sequence[Path | str]
    token: str
    host: str = "127.0.0.1"
    port: int = 8000
    poll: bool = False
    max_sessions: int = 8
    remote_python: str = tab.DEFAULT_PYTHON


class BrowserServer(Server):
    """textual-serve's Server, its routes behind the Gate, one AppProcess per websocket."""

    def __init__(self, options: ServeOptions, port: int, say: Callable[[str], None]) -> None:
        # The command line and public URL textual-serve keeps are not used: processes start
        # from an argument list (sessions.py) and the page finds its websocket from its own
        # address (page/assets/page.js).
        super().__init__(command="velora-tui", host=options.host, port=port, title="velora-tui")
        self.options = options
        self.say = say
        self.gate = Gate(options.token, port)
        self.limit = SessionLimit(options.max_sessions)
        self.argv = tab.command(options.sources, options.poll, options.remote_python)
        self.live: dict[AppProcess, web.WebSocketResponse] = {}
        shown = ", ".join(str(source) for source in options.sources)
        self.title = clean_text(f"velora-tui · {shown}", 200)
        self.page = (PAGE / "index.html").read_text(encoding="utf-8")

    async def _make_app(self) -> web.Application:
        app = web.Application(middlewares=[self.gate.middleware])
        app.on_response_prepare.append(add_security_headers)
        app.add_routes(
            [
                web.get("/", self.handle_index, name="index"),
                web.get("/ws", self.handle_websocket, name="websocket"),
                web.get("/download/{key}", self.handle_download, name="download"),
                web.static("/static", self.statics_path, name="static"),
                web.static("/velora", PAGE / "assets", name="velora"),
            ]
        )
        app.on_shutdown.append(self.on_shutdown)
        return app

    async def handle_index(self, request: web.Request) -> web.Response:
        if self.limit.full():
            return refusal(503, f"velora-tui: {self.limit.reason()}.\n")
        font_size = _bounded(request.query.get("fontsize"), *FONT_SIZES)
        # The title last: a source path may hold any text, "{{font_size}}" included.
        page = self.page.replace("{{font_size}}", str(font_size))
        page = page.replace("{{title}}", html.escape(self.title))
        return web.Response(
            text=page, content_type="text/html", headers={"Cache-Control": "no-store"}
        )

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        if not same_origin(request):
            raise web.HTTPForbidden(text=FOREIGN_ORIGIN)
        websocket = web.WebSocketResponse(heartbeat=HEARTBEAT)
        if self.limit.full():
            await websocket.prepare(request)
            reason = self.limit.reason()
            await websocket.close(code=WSCloseCode.TRY_AGAIN_LATER, message=reason.encode())
            self.say(f"refused a session: {reason}")
            return websocket
        width = _bounded(request.query.get("width"), 1, 80, MAX_COLUMNS)
        height = _bounded(request.query.get("height"), 1, 24, MAX_ROWS)
        process = AppProcess(
            self.argv,
            write_bytes=websocket.send_bytes,
            write_str=websocket.send_str,
            close=partial(_close, websocket),
            download_manager=self.download_manager,
        )
        try:
            with self.limit.hold():
                await websocket.prepare(request)
                self.live[process] = websocket
                try:
                    await self._run(websocket, process, width, height)
                finally:
                    await process.stop()
                    self.live.pop(process, None)
        finally:
            # Said once its place is free again (nothing awaited in between).
            if process.pid is not None:
                self.say(f"session ended (pid {process.pid}); {self.limit.open} open")
        return websocket

    async def _run(
        self, websocket: web.WebSocketResponse, process: AppProcess, width: int, height: int
    ) -> None:
        try:
            await process.start(width, height)
        except OSError as exc:
            self.say(f"cannot start the app: {exc}")
            await websocket.close(
                code=WSCloseCode.INTERNAL_ERROR, message=b"the app could not be started"
            )
            return
        self.say(f"session started (pid {process.pid}); {self.limit.open} open")
        await self._relay(websocket, process)

    async def _relay(self, websocket: web.WebSocketResponse, process: AppProcess) -> None:
        """What the page sends, checked: anything malformed is dropped (a browser, or whatever
        else holds the cookie, may send anything), never passed on nor allowed to end the
        server."""
        async for message in websocket:
            if message.type is not WSMsgType.TEXT:
                continue
            try:
                envelope = json.loads(message.data)
            except ValueError:
                continue
            if not isinstance(envelope, list) or not 1 <= len(envelope) <= 2:
                continue
            kind, data = envelope[0], envelope[1] if len(envelope) == 2 else None
            if kind == "stdin" and isinstance(data, str):
                # A lone surrogate (no keyboard types one) is dropped, not made a key; and no
                # empty packet is sent: Textual's key parser takes one for the end of its
                # input, and the app would answer no key again (Textual 8.2).
                keys = data.encode("utf-8", "ignore")
                if keys:
                    await process.send_bytes(keys)
            elif kind == "resize" and isinstance(data, dict):
                width, height = (
                    _cells(data.get("width"), MAX_COLUMNS),
                    _cells(data.get("height"), MAX_ROWS),
                )
                if width and height:
                    await process.set_terminal_size(width, height)
            elif kind == "ping" and isinstance(data, str) and len(data) <= 64:
                await websocket.send_json(["pong", data])
            elif kind == "blur":
                await process.blur()
            elif kind == "focus":
                await process.focus()

    async def on_shutdown(self, app: web.Application) -> None:
        """Every tab's process is ended before the server exits."""
        live = list(self.live.items())
        await asyncio.gather(*(process.stop() for process, _ in live), return_exceptions=True)
        for _, websocket in live:
            with contextlib.suppress(Exception):
                await websocket.close(code=WSCloseCode.GOING_AWAY, message=b"the server stopped")


def _bounded(text: str | None, low: int, default: int, high: int) -> int:
    try:
        value = int(text) if text is not None else default
    except ValueError:
        return default
    return min(max(value, low), high)


def _cells(value: Any, high: int) -> int | None:
    """A size the page sent, if it is a whole number of cells in 1..high."""
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= high:
        return value
    return None


async def _close(websocket: web.WebSocketResponse) -> None:
    """The app quit (`q`): the page shows that its session ended."""
    await websocket.close(code=WSCloseCode.OK, message=b"the app quit")


def bind(host: str, port: int) -> socket.socket:
    """The listening socket (OSError with the reason when it cannot be had)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(address)
        sock.listen(128)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def url_host(address: str) -> str:
    """How the printed URL names the bound address."""
    if address in ("0.0.0.0", "::"):
        return socket.gethostname()
    return f"[{address}]" if ":" in address else address


def exposed_warning(address: str) -> str | None:
    """What to say when the server can be reached from other machines."""
    if is_loopback(address):
        return None
    return (
        f"warning: listening on {address}, reachable from other machines. The token still"
        " guards every request, but the connection is plain HTTP (the token and your screen"
        " travel unencrypted): prefer the default 127.0.0.1 and `ssh -L 8000:127.0.0.1:8000"
        " HOST` from your machine."
    )


async def run(
    options: ServeOptions, out: Callable[[str], None], err: Callable[[str], None]
) -> None:
    """Serve until Ctrl-C, SIGTERM or SIGHUP. `out` gets the URL to open, `err` the rest."""
    sock = bind(options.host, options.port)
    address, port = sock.getsockname()[:2]
    warning = exposed_warning(address)
    if warning:
        err(warning)
    server = BrowserServer(options, port, err)
    runner = web.AppRunner(
        await server._make_app(),
        handle_signals=False,
        access_log=None,  # an access log would write the token of the first request
        shutdown_timeout=SHUTDOWN_TIMEOUT,
    )
    await runner.setup()
    try:
        await web.SockSite(runner, sock).start()
        out(f"http://{url_host(address)}:{port}/?{TOKEN_QUERY}={options.token}")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()


def serve(options: ServeOptions, out: Callable[[str], None], err: Callable[[str], None]) -> None:
    asyncio.run(run(options, out, err))
