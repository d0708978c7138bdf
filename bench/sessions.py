"""Benchmark: the sessions sidebar and full-text search on a store of 1,000 sessions of 50
messages each, against bare SQLite queries on the same file in the same run.

The store is filled with generated chats: prompts, thinking, reflections (in every other
answer) and outputs whose words follow a Zipf distribution over a 20,000-word vocabulary, so
common words match most texts and rare ones a few, as in real chats.

Timed, each as the median and worst of `--rounds` runs:
- store: `SessionStore.sessions()` and `.search()`, against bare SQL (the sessions by date; the
  FTS5 MATCH alone, ids only) on the same connection;
- app: the sidebar in the running app (headless, 160x48), from a new query to the frame that
  shows its results painted, the search delay after typing (0.15 s) not counted;
- opening the store, `PRAGMA quick_check` included.

    python bench/sessions.py [--sessions 1000] [--messages 50] [--rounds 7]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from textual.widgets import Input, Select, TextArea

from reflectchat.config import ConfigFile
from reflectchat.engine.base import Sampling, TagFormat
from reflectchat.models.choice import ModelChoice
from reflectchat.store.records import SessionMeta, StoredMessage
from reflectchat.store.search import fts_query
from reflectchat.store.session_store import SessionStore
from reflectchat.ui.app import ReflectChatApp
from reflectchat.ui.widgets.sessions_sidebar import SessionsSidebar

SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ze", "pa", "do", "fi", "gu", "ha",
             "je", "bo", "wy", "xu", "qi", "ce"]
QUERIES = [  # (label, text, channel or None)
    ("common word", "{w0}", None),
    ("mid word", "{w200}", None),
    ("rare word", "{w15000}", None),
    ("two words", "{w30} {w300}", None),
    ("prefix, as typed", "{w40p}", None),
    ("common word, reflections only", "{w0}", "reflection"),
]


def vocabulary(n: int, rng: random.Random) -> list[str]:
    words: dict[str, None] = {}  # insertion-ordered, so the same seed gives the same words
    while len(words) < n:
        words["".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))] = None
    return list(words)


def fill(store: SessionStore, sessions: int, messages: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    words = vocabulary(20_000, rng)
    weights = [1 / (rank + 1) for rank in range(len(words))]

    def text(n_words: int) -> str:
        return " ".join(rng.choices(words, weights, k=n_words)).capitalize() + "."

    start = time.time() - sessions * 3600
    for s in range(sessions):
        sid = store.create_session(text(6)[:60], SessionMeta("reflection-llama-3.1-70b",
                                                             "Q4_K_M", "", Sampling()),
                                   start + s * 3600)
        batch = []
        for m in range(messages // 2):
            reflections = [text(40)] if m % 2 else []
            thinking, output = text(150), text(80)
            raw = f"<thinking>{thinking}" + "".join(f"<reflection>{r}</reflection>"
                                                    for r in reflections) \
                + f"</thinking><output>{output}</output>"
            batch += [StoredMessage("user", text(20), created=start + s * 3600 + m),
                      StoredMessage("assistant", raw, thinking, reflections, output,
                                    "reflection", finish_reason="stop",
                                    stats={"completion_tokens": 400},
                                    created=start + s * 3600 + m)]
        store.add_messages(sid, batch)
    return words


def timed(fn: Callable[[], object], rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return times


def ms(times: list[float]) -> str:
    return f"{statistics.median(times) * 1000:8.1f} ms  (worst {max(times) * 1000:6.1f})"


class BenchApp(ReflectChatApp):
    """Notes when each frame is painted, rendering it to terminal bytes as a terminal would."""

    def __init__(self, store: SessionStore, config: Path) -> None:
        from reflectchat.demo import demo_model_path
        from reflectchat.engine.llama import EngineSettings, LlamaEngine

        choice = ModelChoice(demo_model_path(), "demo", TagFormat.REFLECTION, "", Sampling())
        super().__init__(choice, lambda c, progress, runtime: LlamaEngine(
            c.path, EngineSettings(n_ctx=1024), progress), config=ConfigFile(config),
            store=store)
        self.paints: list[float] = []

    def _display(self, screen, renderable) -> None:  # type: ignore[no-untyped-def]
        super()._display(screen, renderable)
        if renderable is not None:
            if hasattr(renderable, "render_segments"):
                renderable.render_segments(self.console)
            self.paints.append(time.perf_counter())


async def time_sidebar(store: SessionStore, queries: list[tuple[str, str, str | None]],
                       rounds: int) -> dict[str, list[float]]:
    """From a new query to the first frame painted after its results are in the list. The
    list is emptied (and painted) before each query, so its results always need a frame, and
    the prompt's cursor does not blink, so no other frame counts. The sidebar's own method
    notes when results land, so the loop polls gently (every 10 ms) and does not steal the
    interpreter from the worker it is timing."""
    app = BenchApp(store, store.path.with_name("config.toml"))  # not the user's config
    results: dict[str, list[float]] = {}
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("f6")  # show the sidebar
        await pilot.pause(1.0)
        app.query_one("#prompt", TextArea).cursor_blink = False  # no frames but ours
        sidebar = app.query_one(SessionsSidebar)
        shown: list[float] = []
        show = sidebar.show_entries

        def noting(*args) -> None:  # type: ignore[no-untyped-def]
            show(*args)
            shown.append(time.perf_counter())

        sidebar.show_entries = noting  # type: ignore[method-assign]
        search = sidebar.query_one("#session-search", Input)
        channel = sidebar.query_one("#search-channel", Select)
        for _ in range(rounds):
            for label, text, chan in [("all sessions", "", None), *queries]:
                if chan:
                    channel.value = chan
                else:
                    channel.clear()
                search.value = text
                await pilot.pause(0.3)  # past the typing delay, so nothing else is pending
                show([], [], False)  # an empty list first, so the results must be painted
                await pilot.pause(0.1)
                shown.clear()
                start = time.perf_counter()
                sidebar.reload()
                while not shown or not app.paints or app.paints[-1] < shown[0]:
                    if time.perf_counter() - start > 10:
                        raise RuntimeError(f"no frame painted for {label!r}")
                    await asyncio.sleep(0.01)
                first_paint = next(p for p in app.paints if p >= shown[0])
                results.setdefault(label, []).append(first_paint - start)
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "store" / "sessions.db"
        store = SessionStore.open(path)
        t = time.perf_counter()
        words = fill(store, args.sessions, args.messages)
        fill_s = time.perf_counter() - t
        db = store._conn
        (texts,) = db.execute("SELECT count(*) FROM texts").fetchone()
        print(f"store: {args.sessions} sessions x {args.messages} messages, {texts:,} "
              f"searchable texts, {path.stat().st_size / 1e6:.0f} MB, filled in {fill_s:.0f} s")
        store.close()
        opens = timed(lambda: SessionStore.open(path).close(), args.rounds)
        print(f"open the store (quick_check included): {ms(opens)}")
        store = SessionStore.open(path)
        db = store._conn

        fmt = {f"w{i}": words[i] for i in (0, 30, 200, 300, 15000)}
        fmt["w40p"] = words[40][:-1]
        queries = [(label, text.format(**fmt), chan) for label, text, chan in QUERIES]

        print("\nstore calls vs bare SQL on the same connection")
        base = timed(lambda: db.execute("SELECT id, title, updated FROM sessions ORDER BY "
                                        "updated DESC").fetchall(), args.rounds)
        ours = timed(store.sessions, args.rounds)
        print(f"  sessions, newest first   bare {ms(base)}   ours {ms(ours)}   ratio "
              f"{statistics.median(ours) / statistics.median(base):5.2f}")
        for label, text, chan in queries:
            match = f"body : ({fts_query(text)})"
            if chan:
                match = f"channel : ({chan}) AND {match}"
            base = timed(lambda m=match: db.execute(
                "SELECT rowid FROM texts_fts WHERE texts_fts MATCH ? LIMIT 100",
                (m,)).fetchall(), args.rounds)
            (hits,) = db.execute("SELECT count(*) FROM texts_fts WHERE texts_fts MATCH ?",
                                 (match,)).fetchone()
            ours = timed(lambda t=text, c=chan: store.search(t, [c] if c else ()), args.rounds)
            print(f"  {label:<30} ({hits:>6,} matching texts)  bare {ms(base)}   ours "
                  f"{ms(ours)}   ratio {statistics.median(ours) / statistics.median(base):5.2f}")

        print("\nthe app's sidebar, query to painted frame (target < 100 ms)")
        for label, times in asyncio.run(time_sidebar(store, queries, args.rounds)).items():
            print(f"  {label:<30} {ms(times)}")


if __name__ == "__main__":
    main()
