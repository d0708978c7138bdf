"""Benchmark: the headless app rendering a 2,000+-token answer in all three panes, against raw
llama-cpp-python streaming of the same GGUF in the same run, and keystroke latency meanwhile.

The app runs headless, but every frame is still turned into the terminal bytes a real terminal
would get (`BenchApp._display`), so painting is part of the cost. Timing:
- app: from pressing Enter to the last frame painted after the answer's final render;
- raw: `create_completion(stream=True)` over the same prompt tokens, reading every chunk;
- floor: llama-cpp-python's bare `Llama.generate` loop, no text at all.
Keystrokes: while the answer streams, a key is posted every 25 ms; latency is from posting the
key event to the end of the first painted frame whose prompt text contains it.
Status bar: the same answer with the status bar (context meter, tokens and time per channel)
turned off, interleaved, for its cost (target: on / off <= 1.02).

    python bench/ui_stream.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import llama_cpp
from engine_stream import SAMPLING, time_raw, time_token_loop
from textual import events

from reflectchat.chat.conversation import Conversation
from reflectchat.demo.long_answer import long_script
from reflectchat.demo.scripted_model import write_scripted_gguf
from reflectchat.engine.base import TagFormat
from reflectchat.engine.llama import EngineSettings, LlamaEngine
from reflectchat.models.choice import ModelChoice
from reflectchat.ui.app import ReflectChatApp
from reflectchat.ui.widgets.status_bar import StatusBar

KEY_EVERY_S = 0.025
PROMPT = "Sum the numbers."


class BenchApp(ReflectChatApp):
    """Renders each frame to terminal bytes, as a real terminal driver would, and notes when
    each typed key first shows on a painted frame."""

    def __init__(self, path: Path) -> None:
        choice = ModelChoice(path, "bench model", TagFormat.REFLECTION, "", SAMPLING, 4096)
        super().__init__(choice, lambda c, progress, runtime: LlamaEngine(
            c.path, EngineSettings(n_ctx=4096), progress))
        self.typed: list[float] = []
        self.painted: list[float] = []
        self.frames = 0
        self.last_frame = 0.0
        self.status_on = True  # off: the chat's figures never reach the bar, so it never redraws

    def on_mount(self) -> None:
        bar = self.query_one(StatusBar)
        redraw = bar.watch_answer_status

        def answer_status_changed() -> None:
            if self.status_on:
                redraw()

        bar.watch_answer_status = answer_status_changed  # type: ignore[method-assign]

    def _display(self, screen, renderable) -> None:  # type: ignore[no-untyped-def]
        super()._display(screen, renderable)
        if renderable is None:
            return
        if hasattr(renderable, "render_segments"):
            renderable.render_segments(self.console)
        self.frames += 1
        shown = self.query_one("#prompt").text.count("q")
        now = self.last_frame = time.perf_counter()
        while len(self.painted) < min(shown, len(self.typed)):
            self.painted.append(now)


async def run_app(path: Path, typing: bool, status: bool = True
                  ) -> tuple[float, int, list[float], int]:
    app = BenchApp(path)
    async with app.run_test(size=(160, 48)) as pilot:
        while app.host.engine is None:
            await pilot.pause(0.02)
        await pilot.pause(0.2)
        app.status_on = status  # off: the bar stays (same layout) but is never redrawn
        prompt = app.query_one("#prompt")
        prompt.insert(PROMPT)
        start = time.perf_counter()
        await pilot.press("enter")
        while not app.chat.conversation.turns:
            await asyncio.sleep(0.001)
        while app.chat.live is not None:
            if typing:
                app.typed.append(time.perf_counter())
                app.post_message(events.Key("q", "q"))
            await asyncio.sleep(KEY_EVERY_S)
        while any(w.group == "render" and not w.is_finished for w in app.workers):
            await asyncio.sleep(0.01)  # the final render
        await pilot.pause(0.3)  # then quiet
        elapsed = app.last_frame - start
        latencies = [p - t for t, p in zip(app.typed, app.painted, strict=False)]
        tokens = app.chat.conversation.turns[-1].stats.completion_tokens
        frames = app.frames
    return elapsed, tokens, latencies, frames


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = write_scripted_gguf(Path(tmp) / "long.gguf", [long_script()])
        engine = LlamaEngine(path, EngineSettings(n_ctx=4096))
        messages = Conversation("", SAMPLING).messages_for(PROMPT)
        tokens = engine.prompt.tokens(messages)
        engine.close()
        raw_llm = llama_cpp.Llama(str(path), n_ctx=4096, verbose=False)
        asyncio.run(run_app(path, typing=False))  # warm-up
        raw_times, loop_times, app_times, typed_times, bare_times = [], [], [], [], []
        latencies: list[float] = []
        n_tokens = 0
        for n in range(args.rounds):
            if n % 2:  # the status-off run goes first in every other round: no order bias
                bare_times.append(asyncio.run(run_app(path, typing=False, status=False))[0])
            elapsed, n_tokens, _, frames = asyncio.run(run_app(path, typing=False))
            app_times.append(elapsed)
            raw_times.append(time_raw(raw_llm, tokens, n_tokens)[0])
            loop_times.append(time_token_loop(raw_llm, tokens)[0])
            elapsed, _, lat, _ = asyncio.run(run_app(path, typing=True))
            typed_times.append(elapsed)
            latencies += lat
            if n % 2 == 0:
                bare_times.append(asyncio.run(run_app(path, typing=False, status=False))[0])
        raw, loop = statistics.median(raw_times), statistics.median(loop_times)
        app, typed = statistics.median(app_times), statistics.median(typed_times)
        bare = statistics.median(bare_times)
        print(f"answer: {n_tokens} tokens, {args.rounds} interleaved rounds, medians")
        print(f"raw llama-cpp-python create_completion stream: {raw:6.3f} s "
              f"({n_tokens / raw:5.0f} tok/s)")
        print(f"bare Llama.generate token loop (no text):      {loop:6.3f} s "
              f"({n_tokens / loop:5.0f} tok/s)")
        print(f"headless app, all three panes:                 {app:6.3f} s "
              f"({n_tokens / app:5.0f} tok/s, {frames} frames painted)")
        print(f"headless app while typing every 25 ms:         {typed:6.3f} s")
        print(f"headless app, status bar off:                  {bare:6.3f} s")
        print(f"ratio app / raw stream:  {app / raw:.3f}  (target <= 1.15)")
        print(f"ratio app / bare loop:   {app / loop:.3f}")
        print(f"ratio status bar on / off: {app / bare:.3f}  (target <= 1.02)")
        ms = [x * 1000 for x in latencies]
        print(f"keystroke to painted frame while streaming: {len(ms)} keys, "
              f"p50 {percentile(ms, 0.5):.1f} ms, p95 {percentile(ms, 0.95):.1f} ms, "
              f"max {max(ms):.1f} ms (target p95 < 50 ms)")


if __name__ == "__main__":
    main()
