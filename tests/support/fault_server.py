"""A small OpenAI-compatible server on 127.0.0.1 for the remote backend's other cases: split-out
reasoning, server errors, dropped and malformed streams, silence, and a client that leaves.
The request's "model" picks the behaviour. Streams are chunked HTTP/1.1, as real servers send."""

from __future__ import annotations

import json
import select
import time
from http.server import BaseHTTPRequestHandler
from typing import Any

from support.local_server import LocalServer

MODES = ["reasoning", "reasoning-field", "tags", "unopened", "endless-line", "error500", "drop",
         "garbage", "html", "stall", "silent", "auth", "long"]
API_KEY = "sk-test-0123456789"
# chunks of the wrong shape, each sent after a good one ("Partial ") and before more text
MALFORMED = {
    "choices-str": {"choices": "oops"},
    "choices-num": {"choices": 7},
    "choice-null": {"choices": [None]},
    "delta-str": {"choices": [{"index": 0, "delta": "hi"}]},
    "content-num": {"choices": [{"index": 0, "delta": {"content": 5}}]},
    "usage-list": {"choices": [], "usage": [1, 2]},
    "finish-list": {"choices": [{"index": 0, "delta": {}, "finish_reason": ["stop"]}]},
}
MODES += [*MALFORMED, "many-lines", "endless-deltas", "after-finish", "harmony", "magistral",
          "repeating", "thinking-field"]


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None,
          usage: dict[str, int] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"object": "chat.completion.chunk",
                            "choices": [] if delta is None else [
                                {"index": 0, "delta": delta, "finish_reason": finish}]}
    if usage:
        data["usage"] = usage
    return data


class FaultServer(LocalServer):
    def __init__(self) -> None:
        super().__init__(Handler)
        self.requests: list[dict[str, Any]] = []
        self.disconnected: list[float] = []  # when a stalled stream's client left


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FaultServer

    def log_message(self, *args: object) -> None:
        pass

    def _json(self, status: int, data: object) -> None:
        body = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _start_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _write_chunk(self, payload: bytes) -> None:
        """One HTTP/1.1 chunk (OSError once the client has left)."""
        self.wfile.write(f"{len(payload):x}\r\n".encode() + payload + b"\r\n")
        self.wfile.flush()

    def _send(self, data: object) -> None:
        text = data if isinstance(data, str) else json.dumps(data)
        self._write_chunk(f"data: {text}\n\n".encode())

    def _end(self) -> None:
        self._send("[DONE]")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def do_GET(self) -> None:
        if self.path == "/v1/models":
            self._json(200, {"object": "list", "data": [
                {"id": m, "object": "model", **({"max_model_len": 4096} if m == "long" else {})}
                for m in MODES]})
        else:
            self._json(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path != "/v1/chat/completions":  # another server's route (Ollama's /api/show)
            self._json(404, {"error": {"message": f"no route {self.path}"}})
            return
        self.server.requests.append({"headers": dict(self.headers), "body": body})
        if body["model"] in MALFORMED:
            self.malformed(MALFORMED[body["model"]])
            return
        getattr(self, "mode_" + body["model"].replace("-", "_"))()

    def malformed(self, bad: dict[str, Any]) -> None:
        self._start_stream()
        self._send(chunk({"content": "Partial "}))
        self._send(bad)
        self._send(chunk({"content": "never shown"}, finish="stop"))
        self._end()

    def mode_many_lines(self) -> None:
        """One event of many 1 MiB `data:` lines and no blank line: at most 16 MiB, or until
        the client leaves."""
        self._start_stream()
        line = b"data: " + b"x" * 2**20 + b"\n"
        for _ in range(16):
            try:
                self._write_chunk(line)
            except OSError:
                break
        self.close_connection = True

    def mode_endless_deltas(self) -> None:
        """A server that ignores max_tokens: 5,000 one-word deltas, or until the client
        leaves."""
        self._start_stream()
        for _ in range(5000):
            try:
                self._send(chunk({"content": "word "}))
            except OSError:
                break
        self.close_connection = True

    def mode_after_finish(self) -> None:
        """Text after the finish reason, and a second choice (index 1) we never asked for."""
        self._start_stream()
        self._send({"choices": [{"index": 0, "delta": {"content": "The answer."}},
                                {"index": 1, "delta": {"content": "Another completion."}}]})
        self._send(chunk({}, finish="stop"))
        self._send(chunk({"content": " Appended after the end."}))
        self._send(chunk(usage={"prompt_tokens": 3, "completion_tokens": 2}))
        self._end()

    def _reasoning(self, field: str) -> None:
        self._start_stream()
        self._send(chunk({"role": "assistant"}))
        for piece in ["The user wants ", "a sum. ", "<reflection>Wait, I added ",
                      "wrong.</reflection>", " Fixed."]:
            self._send(chunk({field: piece}))
        for piece in ["The sum ", "is 5."]:
            self._send(chunk({"content": piece}))
        self._send(chunk({}, finish="stop"))
        self._send(chunk(usage={"prompt_tokens": 11, "completion_tokens": 7}))
        self._end()

    def mode_reasoning(self) -> None:
        self._reasoning("reasoning_content")

    def mode_reasoning_field(self) -> None:
        self._reasoning("reasoning")

    def mode_thinking_field(self) -> None:
        """LFM2.5's servers, and others: the reasoning in a `thinking` field."""
        self._reasoning("thinking")

    def mode_tags(self) -> None:
        self._start_stream()
        for piece in ["<think>Plan", " it.</th", "ink>", "Done \x1b[2J."]:
            self._send(chunk({"content": piece}))
        self._send(chunk({}, finish="length"))
        self._end()

    def mode_unopened(self) -> None:
        """QwQ behind a server without a reasoning parser: its template opened <think>."""
        self._start_stream()
        for piece in ["Let me add ", "2 and 3.\n</th", "ink>\n\nThe sum ", "is 5."]:
            self._send(chunk({"content": piece}))
        self._send(chunk({}, finish="stop"))
        self._end()

    def _content(self, pieces: list[str]) -> None:
        self._start_stream()
        for piece in pieces:
            self._send(chunk({"content": piece}))
        self._send(chunk({}, finish="stop"))
        self._end()

    def mode_harmony(self) -> None:
        """gpt-oss behind a server that passes its harmony markup through as text."""
        self._content(["<|channel|>analy", "sis<|message|>Two ", "and two.<|end|><|start|>",
                       "assistant<|channel|>final<|mes", "sage|>It is 4.<|return|>"])

    def mode_magistral(self) -> None:
        self._content(["[THI", "NK]Three sides.[/THINK]", "A triangle."])

    def mode_repeating(self) -> None:
        """A model that repeats itself without end, or until the client leaves."""
        self._start_stream()
        for _ in range(5000):
            try:
                self._send(chunk({"content": "The capital of France is vuonna. "}))
            except OSError:
                break
        self.close_connection = True

    def mode_error500(self) -> None:
        self._json(500, {"error": {"message": "CUDA out of memory while loading the model"}})

    def mode_auth(self) -> None:
        if self.headers.get("Authorization") != f"Bearer {API_KEY}":
            self._json(401, {"error": {"message": "invalid API key"}})
            return
        self._start_stream()
        self._send(chunk({"content": "authorized"}, finish="stop"))
        self._end()

    def mode_drop(self) -> None:
        self._start_stream()
        self._send(chunk({"content": "Hello "}))
        self._send(chunk({"content": "wor"}))
        self.wfile.flush()
        self.close_connection = True  # no final chunk: the body is cut off

    def mode_garbage(self) -> None:
        self._start_stream()
        self._send(chunk({"content": "Partial "}))
        self._send("{this is not json")
        self._end()

    def mode_html(self) -> None:
        body = b"<html><body>login page</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _wait_for_client_to_leave(self, limit: float) -> None:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.connection], [], [], 0.02)
            if ready and not self.connection.recv(1):
                self.server.disconnected.append(time.monotonic())
                break
        self.close_connection = True

    def mode_stall(self) -> None:
        self._start_stream()
        self._send(chunk({"content": "Thinking about it"}))
        self._wait_for_client_to_leave(20)

    def mode_endless_line(self) -> None:
        """An event line that never ends (no newline): at most 16 MiB, or until the client
        leaves."""
        self._start_stream()
        piece = b"data: " + b"x" * (256 * 1024)
        for _ in range(64):
            try:
                self._write_chunk(piece)
            except OSError:
                break
            piece = b"x" * (256 * 1024)
        self.close_connection = True

    def mode_silent(self) -> None:
        self._start_stream()
        self._wait_for_client_to_leave(20)

    def mode_long(self) -> None:
        self._start_stream()
        self._send(chunk({"content": "ok"}, finish="stop"))
        self._end()
