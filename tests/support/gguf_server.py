"""A llama-server stand-in on 127.0.0.1 that runs a generated GGUF with the real llama.cpp and
sends its raw content, as `llama-server --reasoning-format none` does: the routes reflectchat
reads (`/v1/models`, `/props` with the GGUF's chat template and BOS/EOS texts, `/tokenize`
with `parse_special` and `with_pieces`, and streamed `/v1/chat/completions`). The prompt is
rendered with Jinja2's sandbox from the GGUF's template and the request's
`chat_template_kwargs`, tokenized with special tokens parsed, and answered greedily; every
token's text, special tokens included, goes out as `content`."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from jinja2.sandbox import ImmutableSandboxedEnvironment
from llama_cpp import Llama

from support.local_server import LocalServer


class GGUFServer(LocalServer):
    def __init__(self, model: Path, n_ctx: int = 512) -> None:
        super().__init__(_Handler)
        self.llama = Llama(str(model), n_ctx=n_ctx, verbose=False)
        self.template = self.llama.metadata.get("tokenizer.chat_template", "")
        self.bos = self.text(self.llama.token_bos())
        self.eos = self.text(self.llama.token_eos())
        self.prompts: list[str] = []  # what each answer was asked with, rendered

    def text(self, token: int) -> str:
        return self.llama.detokenize([token], special=True).decode("utf-8", errors="replace")

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        self.llama.close()


class _Handler(BaseHTTPRequestHandler):
    server: GGUFServer

    def log_message(self, *args: object) -> None:
        pass

    def _json(self, data: object) -> None:
        body = json.dumps(data).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path == "/v1/models":
            self._json({"object": "list", "data": [{"id": "model", "object": "model"}]})
        elif self.path == "/props":
            self._json({"chat_template": self.server.template, "bos_token": self.server.bos,
                        "eos_token": self.server.eos,
                        "default_generation_settings": {"n_ctx": self.server.llama.n_ctx()}})
        else:
            self.send_error(404)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path == "/tokenize":
            self._tokenize(body)
        elif self.path == "/v1/chat/completions":
            self._answer(body)
        else:
            self.send_error(404)

    def _tokenize(self, body: dict[str, Any]) -> None:
        llama = self.server.llama
        tokens = llama.tokenize(body["content"].encode(), add_bos=False,
                                special=body.get("parse_special", True))
        if body.get("with_pieces"):
            self._json({"tokens": [{"id": t, "piece": self.server.text(t)} for t in tokens]})
        else:
            self._json({"tokens": tokens})

    def _answer(self, body: dict[str, Any]) -> None:
        server, llama = self.server, self.server.llama
        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
        prompt = env.from_string(server.template).render(
            messages=body["messages"], add_generation_prompt=True, bos_token=server.bos,
            eos_token=server.eos, **body.get("chat_template_kwargs", {}))
        server.prompts.append(prompt)
        tokens = llama.tokenize(prompt.encode(), add_bos=False, special=True)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        limit = body.get("max_tokens") or 200
        llama.reset()
        for n, token in enumerate(llama.generate(tokens, temp=0.0)):
            if llama.token_eos() == token or n >= limit:
                break
            self._send({"choices": [{"index": 0, "delta": {"content": server.text(token)}}]})
        self._send({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        self.wfile.write(b"data: [DONE]\n\n")

    def _send(self, data: object) -> None:
        self.wfile.write(f"data: {json.dumps(data)}\n\n".encode())
        self.wfile.flush()
