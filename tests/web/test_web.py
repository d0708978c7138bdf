"""`reflectchat web`: the app served by textual-serve, driven in headless Chromium (Debian's
package, which .ci/run installs) as a user would: the three panes arrive, a prompt typed in the
page is answered, and the answer is saved."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

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


def web(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "reflectchat", "web", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture
def served() -> Iterator[int]:
    port = free_port()
    server = web("--port", str(port), "--demo")
    try:
        deadline = time.monotonic() + 60
        while True:  # until the server accepts connections (or has died)
            assert server.poll() is None, server.communicate()[1]
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the server did not start listening"
                time.sleep(0.2)
        yield port
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
        page.goto(f"http://127.0.0.1:{served}/")
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


def test_public_serves_elsewhere_with_a_printed_warning():
    port = free_port()
    server = web("--host", "0.0.0.0", "--public", "--port", str(port), "--demo")
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline
                time.sleep(0.2)
    finally:
        server.terminate()
        _, err = server.communicate(timeout=30)
    assert "Warning: serving on 0.0.0.0" in err and "There is no login" in err


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
