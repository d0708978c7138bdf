"""`reflectchat web`: the app served by textual-serve, driven in headless Chromium (Debian's
package, which .ci/run installs) as a user would: the three panes arrive, a prompt typed in the
page is answered, and the answer is saved."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from reflectchat.cli.web_server import COLUMNS, MAX_CONNECTIONS, ROWS, clamp, host_is_loopback

CHROMIUM = shutil.which("chromium")
# Every frame the page receives, decoded as text: the terminal draws on a canvas, so this is
# how the test reads what the browser got.
RECORD_FRAMES = """
(() => {
  window.__seen = "";
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener("message", (event) => {
        const data = event.data;
        if (typeof data === "string") window.__seen += data;
        else if (data instanceof ArrayBuffer) window.__seen += new TextDecoder().decode(data);
        else if (data instanceof Blob) data.text().then((t) => { window.__seen += t; });
      });
    }
  };
})();
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def web(*args: str, log: Path | None = None) -> subprocess.Popen[str]:
    err = log.open("w") if log else subprocess.PIPE
    return subprocess.Popen([sys.executable, "-m", "reflectchat", "web", *args],
                            stdout=err if log else subprocess.DEVNULL, stderr=err, text=True)


@dataclass
class Served:
    port: int
    url: str  # the URL the server printed, with its token
    log: Path  # the server's stdout and stderr

    @property
    def token(self) -> str:
        return self.url.rsplit("token=", 1)[1]

    def refusals(self) -> list[str]:
        return [line for line in self.log.read_text().splitlines()
                if line.startswith("refused ")]


def start(tmp_path: Path, *args: str) -> tuple[subprocess.Popen[str], Served]:
    """Start `reflectchat web` and wait for the URL it prints and for it to listen."""
    port = free_port()
    log = tmp_path / "web.log"
    server = web("--port", str(port), *args, log=log)
    deadline = time.monotonic() + 60
    while True:
        assert server.poll() is None, log.read_text()
        printed = re.search(r"Serving reflectchat at (\S+)", log.read_text())
        if printed:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return server, Served(port, printed[1], log)
            except OSError:
                pass
        assert time.monotonic() < deadline, "the server did not start listening"
        time.sleep(0.2)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    server, served = start(tmp_path, "--demo")
    try:
        yield served
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (.ci/run installs it)")
def test_the_app_in_headless_chromium_shows_three_panes_and_answers(served):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1600, "height": 900})
        page.add_init_script(RECORD_FRAMES)
        requested: list[str] = []  # every request the page makes: none may leave the machine
        page.on("request", lambda request: requested.append(request.url))
        page.goto(served.url)
        page.wait_for_function("() => ['Thinking', 'Reflection', 'Output'].every("
                               "(t) => window.__seen.includes(t))", timeout=90_000)
        page.wait_for_function("() => window.__seen.includes('Ask something')",
                               timeout=60_000)
        page.mouse.click(800, 880)  # the prompt, at the bottom
        page.keyboard.type("1")  # the demo's first starter prompt
        page.keyboard.press("Enter")
        page.wait_for_function("() => window.__seen.includes('sign error')", timeout=90_000)
        # the corrections at a glance are drawn once the answer is whole
        page.wait_for_function("() => window.__seen.includes('each after')", timeout=90_000)
        page.wait_for_function("() => window.__seen.includes('two solutions')", timeout=30_000)
        shot = Path(os.environ.get("REFLECTCHAT_WEB_SCREENSHOT", "") or
                    Path(os.environ["XDG_CACHE_HOME"]) / "web.png")
        shot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shot))
        browser.close()
    assert shot.stat().st_size > 20_000  # a drawn page, not a blank one
    ours = f"http://127.0.0.1:{served.port}/"
    assert requested and all(url.startswith((ours, "data:")) for url in requested), requested
    saved = subprocess.run([sys.executable, "-m", "reflectchat", "sessions", "list", "--json"],
                           capture_output=True, text=True, timeout=60)
    [session] = json.loads(saved.stdout)
    assert session["title"].startswith("Solve the equation") and session["messages"] == 2
    shown = subprocess.run([sys.executable, "-m", "reflectchat", "sessions", "show",
                            str(session["id"]), "--json"], capture_output=True, text=True,
                           timeout=60)
    assert json.loads(shown.stdout)["messages"][1]["finish_reason"] == "stop"


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.5", "example.com"])
def test_a_host_other_than_loopback_is_refused_without_public(host):
    refused = web("--host", host)
    _, err = refused.communicate(timeout=60)
    assert refused.returncode == 1 and "Add --public to serve there anyway" in err


def test_public_serves_elsewhere_with_a_printed_warning(tmp_path):
    server, served = start(tmp_path, "--host", "0.0.0.0", "--public", "--demo")
    server.terminate()
    server.wait(timeout=30)
    err = served.log.read_text()
    assert "Warning: serving on 0.0.0.0" in err and "the URL's token" in err
    assert served.url.startswith(f"http://0.0.0.0:{served.port}/?token=")


def test_only_the_app_options_go_on_to_the_app():
    from reflectchat.cli.parser import build_parser, web_parser
    from reflectchat.cli.web import app_command, is_loopback

    args = build_parser().parse_args(["web", "--host", "0.0.0.0", "--public", "--port", "9",
                                      "--model", "my model.gguf", "--ctx", "2048", "--demo"])
    command = app_command(args, web_parser())
    assert command.endswith("-m reflectchat --model 'my model.gguf' --demo --ctx 2048")
    assert "--host" not in command and "--public" not in command
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0")


# Attacks on the browser surface, against the real server on 127.0.0.1: another web page in the
# user's browser, a guessed or missing token, a site that rebinds its name to 127.0.0.1, a
# terminal size meant to exhaust the app, and more apps than the machine should run.

def status_of(served: Served, path: str, **headers: str) -> int:
    import httpx

    return httpx.get(f"http://127.0.0.1:{served.port}{path}", headers=headers,
                     timeout=30).status_code


async def open_socket(served: Served, path: str, origin: str | None = None,
                      host: str | None = None):
    import aiohttp

    headers = {"Origin": origin or f"http://127.0.0.1:{served.port}"}
    if host:
        headers["Host"] = host
    session = aiohttp.ClientSession()
    try:
        return session, await session.ws_connect(
            f"ws://127.0.0.1:{served.port}{path}", headers=headers,
            timeout=aiohttp.ClientWSTimeout(ws_close=30))
    except aiohttp.WSServerHandshakeError as refused:
        await session.close()
        return None, refused.status


async def frames_until(socket, text: str, limit_s: float = 120) -> str:
    """What the app draws, decoded, until `text` appears (the terminal's own bytes)."""
    import aiohttp

    async def read() -> str:
        seen = ""
        async for message in socket:
            if message.type == aiohttp.WSMsgType.BINARY:
                seen += message.data.decode("utf-8", "replace")
            elif message.type == aiohttp.WSMsgType.TEXT:
                seen += message.data
            if text in seen:
                return seen
        raise AssertionError(f"the socket closed before {text!r} was drawn")

    return await asyncio.wait_for(read(), limit_s)


def test_the_page_needs_the_printed_token(served):
    assert status_of(served, f"/?token={served.token}") == 200
    assert status_of(served, "/") == 403
    assert status_of(served, "/?token=guess") == 403
    assert len(served.refusals()) == 2
    assert all("missing or wrong token" in line for line in served.refusals())


async def test_the_token_is_written_once_in_the_log_in_the_printed_url(served):
    page = f"/?token={served.token}"
    assert status_of(served, page, Referer=f"http://127.0.0.1:{served.port}{page}") == 200
    assert status_of(served, "/static/missing.css", Referer=f"http://x{page}") == 404
    session, socket_ = await open_socket(served, f"/ws/{served.token}?width=80&height=24")
    assert session is not None
    await socket_.close()
    await session.close()
    assert status_of(served, f"/ws/{served.token}x") == 403  # a refusal masks it too
    deadline = time.monotonic() + 30
    while served.log.read_text().count("TOKEN") < 4 and time.monotonic() < deadline:
        time.sleep(0.05)  # the access log is written after each answer
    log = served.log.read_text()
    assert log.count(served.token) == 1, log
    assert "GET /?token=TOKEN" in log and "/ws/TOKEN" in log


def test_the_page_asks_nothing_of_other_servers_and_says_so_to_the_browser(served):
    import httpx

    page = httpx.get(f"http://127.0.0.1:{served.port}/?token={served.token}", timeout=30)
    assert page.status_code == 200
    assert "googleapis" not in page.text and "https://" not in page.text.split("<svg")[0]
    assert "/static/fonts/RobotoMono-VariableFont_wght.ttf" in page.text
    policy = page.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "connect-src 'self'" in policy


def test_a_site_rebound_to_127_0_0_1_cannot_load_the_page(served):
    """DNS rebinding: the page is fetched as evil.example, which now resolves to 127.0.0.1."""
    assert status_of(served, f"/?token={served.token}",
                     Host=f"evil.example:{served.port}") == 403
    assert "is not a loopback address" in served.refusals()[0]


async def test_another_origin_a_wrong_token_or_no_token_cannot_open_the_socket(served):
    for path, origin in [(f"/ws/{served.token}", "http://evil.example"),
                         (f"/ws/{served.token}", "http://127.0.0.1:1"),
                         ("/ws/guess", None), ("/ws", None)]:
        session, status = await open_socket(served, f"{path}?width=80&height=24", origin)
        assert session is None and status == 403, (path, origin)
    reasons = served.refusals()
    assert len(reasons) == 4
    assert "Origin 'http://evil.example' is not this server's" in reasons[0]
    assert "missing or wrong token" in reasons[2] and "missing or wrong token" in reasons[3]


async def test_a_huge_terminal_is_clamped_and_the_app_still_draws(served):
    """Asked for 20000x10000 cells, the app got none drawn in minutes; clamped, it draws."""
    session, socket = await open_socket(served, f"/ws/{served.token}?width=20000&height=10000")
    try:
        await socket.send_json(["resize", {"width": 10**9, "height": "x"}])
        await frames_until(socket, "Output")
    finally:
        await socket.close()
        await session.close()


async def test_a_fifth_connection_is_refused(served):
    opened = []
    try:
        for _ in range(MAX_CONNECTIONS):
            session, socket = await open_socket(served, f"/ws/{served.token}?width=80&height=24")
            assert session is not None, socket
            opened.append((session, socket))
        session, status = await open_socket(served, f"/ws/{served.token}?width=80&height=24")
        assert session is None and status == 503
        assert served.refusals() == [line for line in served.refusals()
                                     if f"already {MAX_CONNECTIONS} connections" in line]
        assert len(served.refusals()) == 1
    finally:
        for session, socket in opened:
            await socket.close()
            await session.close()


def test_sizes_are_clamped_to_sane_bounds():
    assert clamp("20000", COLUMNS, 80) == COLUMNS[1] and clamp("-5", ROWS, 24) == ROWS[0]
    assert clamp("abc", COLUMNS, 80) == 80 and clamp(None, ROWS, 24) == 24
    assert host_is_loopback("127.0.0.1:8000") and host_is_loopback("[::1]:8000")
    assert host_is_loopback("localhost") and not host_is_loopback("evil.example:8000")
    assert not host_is_loopback("127.0.0.1.evil.example:8000")
