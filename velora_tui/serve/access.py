"""Who may use the served app: the token, the cookie it becomes, the websocket's Origin.

The token is printed once, in the URL to open (Jupyter's way). The first request that carries
it gets it back as a cookie (HttpOnly: no script reads it; SameSite=Strict: no request from
another site carries it) and is redirected to the same URL without it, so it leaves the
address bar and the history. Every other request, page, asset, websocket or a path that does
not exist, needs that cookie: 401 without it, 403 with a wrong one, and nothing is started.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import re
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web
from yarl import URL

TOKEN_ENV = "VELORA_TUI_TOKEN"
TOKEN_QUERY = "token"
# A fixed token (file or environment) goes into a URL and a cookie as it is: URL-safe
# characters only, and long enough not to be guessed.
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9._~-]{16,512}")
# What every response carries. The page asks nothing of any other host (connect-src 'self'
# also covers the websocket to this host and port), runs no inline script and cannot be framed
# by another site's page (which could then read keys typed into it). textual.js adds its
# stylesheets as <style> elements, hence 'unsafe-inline' for styles only.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "font-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
NO_TOKEN = (
    "velora-tui: this page needs the token. Open the URL that `velora-tui serve` printed"
    " (it ends with ?token=...).\n"
)
WRONG_TOKEN = "velora-tui: wrong token. Open the URL that `velora-tui serve` printed.\n"
FOREIGN_ORIGIN = "velora-tui: the app can only be driven from its own page.\n"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class TokenError(ValueError):
    """A fixed token that cannot be used (said in one line)."""


def choose_token(token_file: Path | None, environ: dict[str, str] | None = None) -> str:
    """The token: from `token_file`, else from $VELORA_TUI_TOKEN, else a new random one."""
    environ = dict(os.environ) if environ is None else environ
    if token_file is not None:
        try:
            text = token_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise TokenError(f"cannot read the token file {token_file}: {exc}") from None
        return _checked(text.strip(), f"the token in {token_file}")
    fixed = environ.get(TOKEN_ENV)
    if fixed:
        return _checked(fixed.strip(), f"${TOKEN_ENV}")
    return secrets.token_urlsafe(32)


def _checked(token: str, where: str) -> str:
    if not TOKEN_PATTERN.fullmatch(token):
        raise TokenError(
            f"{where} must be 16 to 512 characters of A-Z a-z 0-9 . _ ~ -"
            " (it goes into a URL and a cookie as it is)"
        )
    return token


class Gate:
    """The checks every request passes (an aiohttp middleware) and the websocket's Origin."""

    def __init__(self, token: str, port: int) -> None:
        self._token = token.encode("ascii")
        # Cookies are per host, not per port: two servers on one machine keep apart by name.
        self.cookie = f"velora_tui_{port}"

    def matches(self, given: str) -> bool:
        """In constant time: how long a wrong guess takes says nothing about the token."""
        return hmac.compare_digest(given.encode("utf-8", "replace"), self._token)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        given = request.query.get(TOKEN_QUERY)
        if given is not None:
            if not self.matches(given):
                return refusal(403, WRONG_TOKEN)
            return self._keep_in_cookie(request)
        cookie = request.cookies.get(self.cookie)
        if cookie is None:
            return refusal(401, NO_TOKEN)
        if not self.matches(cookie):
            return refusal(403, WRONG_TOKEN)
        return await handler(request)

    def _keep_in_cookie(self, request: web.Request) -> web.StreamResponse:
        kept = [(key, value) for key, value in request.query.items() if key != TOKEN_QUERY]
        path = URL.build(path=local_path(request.rel_url.raw_path), encoded=True)
        location = str(path.with_query(kept))
        response = web.Response(status=303, headers={"Location": location})
        response.set_cookie(
            self.cookie,
            self._token.decode("ascii"),
            httponly=True,
            samesite="Strict",
            path="/",
        )
        response.headers["Cache-Control"] = "no-store"
        return response


def local_path(raw_path: str) -> str:
    """`raw_path` as a path of this server: one `/` in front. A browser reads a Location of
    `//host/...` (and `/\\host`, or with a tab or a newline in between, which it drops) as
    another site: the redirect that takes the token out of the URL must not lead there."""
    return "/" + raw_path.lstrip("/\\\t\n\r ")


def refusal(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=text, headers={"Cache-Control": "no-store"})


def same_origin(request: web.Request) -> bool:
    """Whether the request comes from this server's own page: a browser names the page that
    opens a websocket in its Origin header, and a page of another site must not drive the app
    (with the user's cookie, were it sent). Compared with the Host the browser asked for, so
    any name or port that reaches the server (`ssh -L 9000:127.0.0.1:8000`) works."""
    origin = request.headers.get("Origin")
    host = request.headers.get("Host")
    if not origin or not host:
        return False
    return origin.lower() in (f"http://{host.lower()}", f"https://{host.lower()}")


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """aiohttp's on_response_prepare: every response, refusals and static files included."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


def is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).is_loopback
    except ValueError:
        return False
