"""Benchmark: does the app's cost per streamed token stay flat as an answer grows?

A local OpenAI-compatible server on 127.0.0.1 (a process of its own, as a real server is)
streams an answer as fast as the app reads it:
thinking (`reasoning_content`) in paragraphs, then an output in paragraphs, one word per delta
(one token each). The headless app, painting every frame to terminal bytes as a real terminal
driver would, draws it at 160x48. Timing is from Enter to the last frame painted after the
answer ended (a long answer's panes then fold: their end drawn; the time to draw the whole
thinking on Home is printed apart). The same server's stream read by the remote backend alone
(no app) is the baseline, in the same run. Then Esc: a fresh answer of the largest size is
stopped when most of it has come, and the time from the key to the answer being stopped and
saved in the list is printed.

    python bench/long_answer.py [--sizes 10000,100000] [--one-paragraph]

Target (issue 27): the largest answer at most 10x the time of the 10x smaller one; Esc < 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from textual import events

from reflectchat.engine.base import ChatMessage, Sampling, TagFormat
from reflectchat.engine.endpoints import Endpoint, api_base
from reflectchat.engine.remote import RemoteEngine
from reflectchat.models.choice import ModelChoice
from reflectchat.reflection.events import Channel
from reflectchat.ui.app import ReflectChatApp

WORDS = ["the", "sum", "of", "the", "first", "terms", "is", "what", "we", "check", "again",
         "before", "going", "on"]


def words(n: int, paragraph: int) -> list[str]:
    """`n` one-token pieces; a blank line every `paragraph` words (0: never). A number every
    seventh word: text that repeats exactly would be stopped as a loop."""
    out = []
    for i in range(n):
        word = str(i) if i % 7 == 6 else WORDS[i % len(WORDS)]
        out.append(("\n\n" if paragraph and i and i % paragraph == 0 else " ") + word)
    return out


class AnswerServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, paragraph: int) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.paragraph = paragraph

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: AnswerServer

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        body = json.dumps({"object": "list", "data": [{"id": "long", "object": "model"}]})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if not self.path.endswith("/chat/completions"):  # llama-server's own endpoints,
            self.send_error(404)  # which the app probes for the template: not this server's
            return
        n = int(body["max_tokens"])
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        thinking = n * 3 // 4
        try:
            for i, piece in enumerate(words(n, self.server.paragraph)):
                field = "reasoning_content" if i < thinking else "content"
                self._send({"choices": [{"index": 0, "delta": {field: piece}}]})
            self._send({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                        "usage": {"prompt_tokens": 5, "completion_tokens": n}})
            self._send("[DONE]")
            self.wfile.write(b"0\r\n\r\n")
        except OSError:
            pass  # the client stopped reading (Esc)
        self.close_connection = True

    def _send(self, data: object) -> None:
        text = data if isinstance(data, str) else json.dumps(data)
        payload = f"data: {text}\n\n".encode()
        self.wfile.write(f"{len(payload):x}\r\n".encode() + payload + b"\r\n")


class BenchApp(ReflectChatApp):
    """Paints every frame to terminal bytes and notes when the last one was."""

    def __init__(self, url: str, n: int) -> None:
        endpoint = Endpoint(api_base(url), model="long")
        choice = ModelChoice(Path(), "long @ 127.0.0.1", TagFormat.AUTO, "",
                             Sampling(max_tokens=n), model_id="long", endpoint=endpoint)
        super().__init__(choice, lambda c, progress, runtime: RemoteEngine(
            c.endpoint, c.endpoint.model, c.tag_format))
        self.last_frame = 0.0

    def _display(self, screen, renderable) -> None:  # type: ignore[no-untyped-def]
        super()._display(screen, renderable)
        if renderable is not None and hasattr(renderable, "render_segments"):
            renderable.render_segments(self.console)
        self.last_frame = time.perf_counter()


async def run_app(url: str, n: int, stop_at: float | None = None
                  ) -> tuple[float, float, float | None, float | None]:
    """Seconds from Enter to the last frame, of those the last from the answer's end,
    (with `stop_at`, a fraction of `n`) seconds from Esc to the answer stopped, and seconds to
    draw the whole thinking when it was folded (Home)."""
    app = BenchApp(url, n)
    async with app.run_test(size=(160, 48)) as pilot:
        while app.host.engine is None:
            await pilot.pause(0.02)
        await pilot.pause(0.2)
        app.query_one("#prompt").insert("Go on at length.")
        start = time.perf_counter()
        await pilot.press("enter")
        while not app.chat.conversation.turns:
            await asyncio.sleep(0.001)
        turn = app.chat.conversation.turns[-1]
        stop_s = None
        if stop_at is not None:
            while len(turn.answer.raw.split()) < stop_at * n and app.chat.live is not None:
                await asyncio.sleep(0.01)
            pressed = time.perf_counter()
            app.post_message(events.Key("escape", None))
            while app.chat.live is not None:
                await asyncio.sleep(0.005)
            stop_s = time.perf_counter() - pressed
        while app.chat.live is not None:
            await asyncio.sleep(0.01)
        ended = time.perf_counter()
        while any(w.group == "render" and not w.is_finished for w in app.workers):
            await asyncio.sleep(0.01)
        await pilot.pause(0.3)
        elapsed = app.last_frame - start
        if stop_at is None and turn.stats.completion_tokens != n:
            raise SystemExit(f"the answer ended after {turn.stats.completion_tokens} tokens "
                             f"of {n}: {turn.stats.finish_reason}")
        final_s = app.last_frame - ended
        pane = app.chat.answer_view.pane(Channel.THINKING)
        unfold_s = None
        if stop_at is None and pane.folded is not None:  # the reader asks for the whole text
            pressed = time.perf_counter()
            await pane.unfold()
            await pilot.pause(0.3)
            unfold_s = app.last_frame - pressed
    return elapsed, final_s, stop_s, unfold_s


def read_alone(url: str, n: int) -> float:
    """The remote backend reading the same stream with no app: the floor."""
    engine = RemoteEngine(Endpoint(api_base(url), model="long"), "long", TagFormat.AUTO)
    start = time.perf_counter()
    for _ in engine.generate([ChatMessage("user", "Go on at length.")], Sampling(max_tokens=n)):
        pass
    return time.perf_counter() - start


def serve(paragraph: int, port: multiprocessing.Queue) -> None:
    server = AnswerServer(paragraph)
    port.put(server.server_address[1])
    server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--one-paragraph", action="store_true",
                        help="no blank lines at all: one block that grows")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    port: multiprocessing.Queue = multiprocessing.Queue()
    child = multiprocessing.Process(target=serve, args=(0 if args.one_paragraph else 60, port),
                                    daemon=True)
    child.start()
    url = f"http://127.0.0.1:{port.get(timeout=30)}"
    print(f"answer shape: {'one paragraph' if args.one_paragraph else 'paragraphs of 60 words'}"
          ", 3/4 thinking then output, 160x48")
    results = {}
    for n in sizes:
        alone = read_alone(url, n)
        app_s, final_s, _, unfold_s = asyncio.run(run_app(url, n))
        results[n] = app_s
        print(f"{n:>7,} tokens: app {app_s:7.2f} s ({n / app_s:6.0f} tok/s; after its end "
              f"{final_s:5.2f} s), backend alone {alone:6.2f} s, app / alone "
              f"{app_s / alone:5.2f}" + (f"; Home, the whole thinking drawn: {unfold_s:.2f} s"
                                         if unfold_s is not None else ""))
    small, large = sizes[0], sizes[-1]
    print(f"ratio {large:,} / {small:,} tokens: {results[large] / results[small]:.2f} "
          f"(flat cost: {large / small:.0f}; target <= {large / small:.0f})")
    _, _, stop_s, _ = asyncio.run(run_app(url, large, stop_at=0.9))
    print(f"Esc at 90% of a {large:,}-token answer: stopped in {stop_s:.3f} s (target < 1 s)")
    child.terminate()


if __name__ == "__main__":
    main()
