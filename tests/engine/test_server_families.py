"""Families no pair of tags describes, from a server that passes their raw content through
(`llama-server --reasoning-format none`): the format is read from the template and tokenizer
the server shows (`/props`, `/tokenize`), as from a GGUF, so Kimi K3's, Gemma 4's and Apriel's
answers land in the right panes with every wrapper gone. The server is a llama-server stand-in
running the same generated GGUFs with the real llama.cpp (tests/support/gguf_server.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from http.server import BaseHTTPRequestHandler

import pytest
from support.gguf_server import GGUFServer
from support.local_server import LocalServer
from support.wrapped_families import (
    APRIEL,
    APRIEL_15_SCRIPTS,
    APRIEL_15_TEMPLATE,
    APRIEL_TEMPLATE,
    GEMMA,
    GEMMA_TEMPLATE,
    KIMI,
    KIMI_TEMPLATE,
)

from reflectchat.engine.base import ChatMessage, Sampling, TagFormat
from reflectchat.engine.endpoints import Endpoint
from reflectchat.engine.remote import RemoteEngine
from reflectchat.reflection.answer import Answer
from reflectchat.reflection.stream import channel_events

FAMILIES = {
    "kimi": (KIMI, KIMI_TEMPLATE, [], ("Two and two: four.", "It is 4.")),
    "gemma": (GEMMA, GEMMA_TEMPLATE, ["--effort", "high"],
              ("The sky scatters blue light.", "Because of Rayleigh scattering.")),
    "apriel": (APRIEL, APRIEL_TEMPLATE, [], ("3 apples and 2 apples.", "5 apples.")),
    "apriel-1.5": (APRIEL_15_SCRIPTS, APRIEL_15_TEMPLATE, [],
                   ("Here are my reasoning steps: Ten minus three.", "Seven.")),
}


def ask(url: str, *args: str) -> tuple[dict, str]:
    done = subprocess.run([sys.executable, "-m", "reflectchat", "ask", "--no-save", "--json",
                           "--endpoint", f"{url}/v1", *args, "q"], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout), done.stderr


@pytest.mark.parametrize("family", FAMILIES)
def test_a_servers_raw_content_is_split_by_the_template_it_shows(make_model, family):
    scripts, template, flags, (thinking, output) = FAMILIES[family]
    with GGUFServer(make_model(scripts, template=template)) as server:
        answer, _ = ask(server.url, *flags)
        raw = server.prompts[-1]
    assert (answer["thinking"], answer["output"]) == (thinking, output)
    assert "<|" not in answer["output"] and "[BEGIN" not in answer["output"]
    assert "[END" not in answer["output"]
    assert raw.endswith(("<|sep|>", "<|go|>", "Here are my reasoning steps:", "<|assistant|>\n"))


def test_the_servers_template_switches_are_sent_and_its_prefill_read(make_model):
    """Gemma 4's `enable_thinking` found by rendering is sent with the effort; without it the
    template writes the empty thought block itself, and what follows is all answer."""
    with GGUFServer(make_model(GEMMA, template=GEMMA_TEMPLATE)) as server:
        engine = RemoteEngine(Endpoint(f"{server.url}/v1"), None)
        assert engine.found_format is not None
        assert engine.found_format.tag_format == TagFormat("tags", ("<|channel>thought",
                                                                    "<channel|>"))
        assert "server's template" in engine.found_format.why
        on = engine.generate([ChatMessage("user", "q")], Sampling(effort="high"))
        answer = Answer()
        list(channel_events(on, engine.found_format.tag_format, answer))
        assert "<|channel>" not in server.prompts[-1]  # enable_thinking reached the template
        assert answer.thinking == "The sky scatters blue light."


def test_a_server_that_shows_no_template_is_read_by_its_markers_as_before(make_model):
    """vLLM, Ollama and LM Studio have no /props: nothing is found, nothing breaks."""
    from support.fault_server import FaultServer

    with FaultServer() as server:
        engine = RemoteEngine(Endpoint(f"{server.url}/v1"), "reasoning")
        assert engine.found_format is None


def test_a_switch_of_the_servers_own_name_is_found_and_sent(make_model):
    """Kimi K3's template turns thinking off with `thinking`, a name no server field carries:
    found by rendering the server's template, sent in chat_template_kwargs."""
    with GGUFServer(make_model(KIMI, template=KIMI_TEMPLATE)) as server:
        ask(server.url, "--effort", "off")
        assert server.prompts[-1].endswith("<|open|>response<|sep|>")
        ask(server.url, "--effort", "high")
        assert server.prompts[-1].endswith("<|open|>think<|sep|>")


def test_the_context_is_what_the_server_says_it_runs(make_model):
    """A llama-server started with -c 32768 was taken for 8,192 tokens (trimmed at a quarter);
    LM Studio and Ollama say theirs on their own routes."""
    with GGUFServer(make_model(KIMI, template=KIMI_TEMPLATE), n_ctx=32768) as server:
        engine = RemoteEngine(Endpoint(f"{server.url}/v1"), None)
        assert (engine.n_ctx, engine.context_stated) == (32768, True)
    for routes in ({"/api/v0/models/qwen%2Fqwq": {"id": "qwen/qwq", "max_context_length": 40960,
                                                  "loaded_context_length": 16384}},
                   {"/api/show": {"parameters": "temperature 0.6\nnum_ctx 16384"}}):
        with LocalServer(_routes({"/v1/models": {"data": [{"id": "qwen/qwq"}]}, **routes})) \
                as server:
            engine = RemoteEngine(Endpoint(f"{server.url}/v1"), None, TagFormat.THINK)
            assert (engine.n_ctx, engine.context_stated) == (16384, True)
    with LocalServer(_routes({"/v1/models": {"data": [{"id": "m"}]}})) as server:
        engine = RemoteEngine(Endpoint(f"{server.url}/v1"), None)
        assert engine.context_stated is False  # nothing said: a guess, for trimming only


def _routes(answers: dict[str, object]) -> type[BaseHTTPRequestHandler]:
    """A server that answers these paths (GET or POST) with JSON, and 404 elsewhere."""
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            body = json.dumps(answers[self.path]).encode() if self.path in answers else b"{}"
            self.send_response(200 if self.path in answers else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.do_GET()

    return Handler
