"""The browser surface, guarded: textual-serve's server with what a local web app must add so
that no other web page in the user's browser can drive it.

- **A secret token**, made anew for each run and printed in the URL the user opens (as Jupyter
  does, https://jupyter-server.readthedocs.io/en/latest/operators/security.html). The page and
  the WebSocket both need it; the page hands it to the WebSocket in its path, since textual-serve's
  client appends its own `?width=..&height=..` to the socket URL.
- **Same origin only**: a WebSocket is not bound by the browser's same-origin policy, so a page on
  any site could open one to 127.0.0.1. Its `Origin` header must name the address the page was
  served from, and on a loopback address that `Host` must be a loopback one too (a site that
  rebinds its DNS name to 127.0.0.1 sends its own name as Host).
- **Bounds**: the terminal size a client asks for is clamped (each cell costs the app memory and
  time), and at most `MAX_CONNECTIONS` apps run at once (each connection is a whole process).

Each refusal is one line on stderr: what was refused and why.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import re
import secrets
import sys
from typing import Any
from urllib.parse import urlsplit

import aiohttp_jinja2
from aiohttp import WSMsgType, web
from textual_serve.app_service import AppService
from textual_serve.server import Server

MAX_CONNECTIONS = 4
COLUMNS = (20, 500)  # a 5K screen at a small font is about 500 columns
ROWS = (8, 200)


def clamp(value: object, bounds: tuple[int, int], default: int) -> int:
    try:
        number = int(str(value))
    except ValueError:
        number = default
    return max(bounds[0], min(bounds[1], number))


def host_is_loopback(host: str) -> bool:
    """A Host header (name and port) that names this machine's loopback address."""
    try:
        name = urlsplit(f"//{host}").hostname or ""
    except ValueError:
        return False
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


# <link ... href="https://..."> (a stylesheet from another server) in textual-serve's page
_OUTSIDE_STYLESHEET = re.compile(r"<link\b[^>]*\bhref=\"https?://[^\"]*\"[^>]*/?>", re.DOTALL)
_LOCAL_FONT = ("<style>@font-face { font-family: \"Roboto Mono\"; "
               "src: url(\"/static/fonts/RobotoMono-VariableFont_wght.ttf\"); }</style>")
# the page's own script and styles are inline; everything it loads or connects to is this
# server's (the app's socket included: 'self' covers ws: to the same host)
LOCAL_ONLY = ("default-src 'self'; script-src 'self' 'unsafe-inline'; "
              "style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self'; "
              "connect-src 'self'")


class _TokenMask(logging.Filter):
    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.token in message:
            record.msg, record.args = message.replace(self.token, "TOKEN"), None
        return True


class GuardedServer(Server):
    """textual-serve's Server with a token, an origin check, clamped sizes and a connection
    limit; the page, static files and downloads are textual-serve's own."""

    def __init__(self, command: str, host: str, port: int, loopback: bool) -> None:
        super().__init__(command, host=host, port=port, title="reflectchat")
        self.token = secrets.token_urlsafe(32)
        self.loopback = loopback
        self.connections = 0

    @property
    def url(self) -> str:
        shown = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{shown}:{self.port}/?token={self.token}"

    def refuse(self, request: web.Request, why: str,
               answer: type[web.HTTPError] = web.HTTPForbidden) -> web.HTTPError:
        """The refusal to raise, its one line logged (the token left out of the path)."""
        path = request.path.replace(self.token, "TOKEN")
        print(f"refused {request.method} {path} from {request.remote}: {why}",
              file=sys.stderr, flush=True)
        return answer(text=f"reflectchat refused this request: {why}\n")

    def check(self, request: web.Request, token: str) -> None:
        """Raise the refusal for a request with a wrong token, host or origin."""
        if not hmac.compare_digest(token.encode(), self.token.encode()):
            raise self.refuse(request, "missing or wrong token (open the URL that "
                                       "`reflectchat web` printed)")
        host = request.host
        if self.loopback and not host_is_loopback(host):
            raise self.refuse(request, f"Host {host!r} is not a loopback address")
        origin = request.headers.get("Origin")
        if origin is not None and origin != f"http://{host}":
            raise self.refuse(request, f"Origin {origin!r} is not this server's")

    def initialize_logging(self) -> None:
        """textual-serve's logging, with the token masked in every line it writes: aiohttp's
        access log wrote it in each request line (`GET /?token=...`, `/ws/<token>`) and in
        the Referer of the page's own requests."""
        super().initialize_logging()
        for handler in logging.getLogger().handlers:
            handler.addFilter(_TokenMask(self.token))

    async def _make_app(self) -> web.Application:
        app = await super()._make_app()
        app.router.add_get("/ws/{token}", self.handle_websocket)
        return app

    async def on_startup(self, app: web.Application) -> None:
        """textual-serve prints its logo and a URL without the token: say nothing here (the
        command prints the URL to open)."""

    async def handle_index(self, request: web.Request) -> web.Response:
        """textual-serve's page, its socket URL carrying the token. URLs follow the Host the
        browser used (textual-serve builds them from the listening address, which for 0.0.0.0 no
        browser can reach)."""
        self.check(request, request.query.get("token", ""))
        context: dict[str, Any] = {
            "font_size": clamp(request.query.get("fontsize", "16"), (6, 64), 16),
            "app_websocket_url": f"ws://{request.host}/ws/{self.token}",
            "config": {"static": {"url": "/static/"}},
            "application": {"name": self.title},
        }
        page = aiohttp_jinja2.render_template("app_index.html", request, context)
        # textual-serve's page asks Google's font server for Roboto Mono, which it also ships:
        # the bundled font instead, and a policy that lets the page reach nothing but this
        # server (an app that promises to stay local)
        assert page.text is not None
        page.text = _OUTSIDE_STYLESHEET.sub(_LOCAL_FONT, page.text)
        page.headers["Content-Security-Policy"] = LOCAL_ONLY
        return page

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        self.check(request, request.match_info.get("token", ""))
        if self.connections >= MAX_CONNECTIONS:
            raise self.refuse(request, f"already {MAX_CONNECTIONS} connections (each browser "
                                       "tab runs its own app)", web.HTTPServiceUnavailable)
        self.connections += 1
        try:
            return await self.serve_app(request)
        finally:
            self.connections -= 1

    async def serve_app(self, request: web.Request) -> web.WebSocketResponse:
        width = clamp(request.query.get("width", "80"), COLUMNS, 80)
        height = clamp(request.query.get("height", "24"), ROWS, 24)
        websocket = web.WebSocketResponse(heartbeat=15, max_msg_size=1 << 20)
        await websocket.prepare(request)
        service = AppService(self.command, write_bytes=websocket.send_bytes,
                             write_str=websocket.send_str, close=websocket.close,
                             download_manager=self.download_manager, debug=False)
        try:
            await service.start(width, height)
            await self.relay(websocket, service)
        except asyncio.CancelledError:
            await websocket.close()
        finally:
            await service.stop()
        return websocket

    async def relay(self, websocket: web.WebSocketResponse, service: AppService) -> None:
        """The browser's messages to the app: keys, sizes (clamped), pings, focus; anything
        malformed is dropped."""
        async for message in websocket:
            if message.type != WSMsgType.TEXT:
                continue
            try:
                kind, data = message.json()
            except ValueError:
                continue
            if kind == "stdin" and isinstance(data, str):
                await service.send_bytes(data.encode("utf-8"))
            elif kind == "resize" and isinstance(data, dict):
                await service.set_terminal_size(clamp(data.get("width"), COLUMNS, 80),
                                                clamp(data.get("height"), ROWS, 24))
            elif kind == "ping":
                await websocket.send_json(["pong", data])
            elif kind == "blur":
                await service.blur()
            elif kind == "focus":
                await service.focus()
