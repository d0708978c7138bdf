"""Driving the app in tests: the real llama.cpp engine on a generated GGUF, and polling."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from textual.pilot import Pilot

from reflectchat.chat.conversation import Conversation
from reflectchat.demo.scripted_model import Cost
from reflectchat.engine.base import Runtime, Sampling, TagFormat
from reflectchat.engine.llama import EngineSettings, LlamaEngine
from reflectchat.models.choice import ModelChoice, choose_model
from reflectchat.store.session_store import SessionStore
from reflectchat.ui.app import ReflectChatApp

# A scripted model at a few hundred tokens a second (eight layers, seven of them zeros) instead
# of the thousands one layer gives: an endless answer still streams when a test acts, without
# batches so large that the app's drawing takes the test's time (the typing test on one core:
# 10.4 s at one layer, 5.3 s at these).
STREAMING = Cost(layers=8, width=256, ffn=1024)


def make_app(model: Path | None = None, conversation: Conversation | None = None,
             tag_format: TagFormat = TagFormat.REFLECTION, store: SessionStore | None = None,
             session_id: int | None = None, n_ctx: int | None = None,
             sampling: Sampling | None = None,
             engine_class: type[LlamaEngine] = LlamaEngine,
             store_problem: str | None = None) -> ReflectChatApp:
    """The app on `model` (default: the demo model), loading it through llama.cpp, with
    history in `store` if one is given; `engine_class`: the engine, or one that is slow at
    something (a close that waits), to show the UI does not wait with it; `store_problem`: why
there is no store."""
    if model is None:
        choice = choose_model(None, None, demo=True)
    else:
        # a format the test names holds; with auto, the app reads it from the model file
        choice = ModelChoice(model, "test model", tag_format, "",
                             sampling or Sampling(temperature=0.0),
                             format_why="as the test sets it",
                             format_pinned=tag_format != TagFormat.AUTO)

    def make_engine(c: ModelChoice, progress: Callable[[float], bool],
                    runtime: Runtime) -> LlamaEngine:
        context = runtime.n_ctx or n_ctx or c.context_length or 4096
        # One thread unless a test asks for more: a scripted model's endless answers then
        # stream at the rate these tests were written for. At the 2-thread default they come
        # faster than the app draws a growing answer on a 2-core machine, and the screen never
        # settles (the app's cost per token is not flat yet: issue 27).
        spec = runtime.speculation or "off"  # what F8 sets: off, ngram or a draft's path
        drafting = {"speculation": spec} if spec in ("off", "ngram") else \
            {"speculation": "draft", "draft_model": Path(spec)}
        return engine_class(c.path, EngineSettings(n_ctx=context,
                                                  n_threads=runtime.n_threads or 1,
                                                  **drafting), progress)

    def choose(model_id: str | None, quant: str | None) -> ModelChoice:
        return choose_model(model_id, quant, demo=model_id is None)

    return ReflectChatApp(choice, make_engine, conversation, choose=choose, store=store,
                          store_problem=store_problem, session_id=session_id)


async def wait_for(pilot: Pilot, condition: Callable[[], object], timeout: float = 30.0,
                   what: str = "condition") -> None:
    """Until `condition()` holds, letting the app run. It polls with a plain sleep:
    `pilot.pause` sends a callback to every widget on the screen and waits for them all,
    which on a screen of long answers cost more than the test's own work."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def loaded(pilot: Pilot) -> None:
    app = pilot.app
    await wait_for(pilot, lambda: app.host.engine is not None, what="the model to load")
    await pilot.pause()


async def ask(pilot: Pilot, prompt: str, wait: bool = True) -> None:
    app = pilot.app
    assert isinstance(app, ReflectChatApp)
    before = len(app.chat.conversation.turns)
    app.query_one("#prompt").focus()  # as a user clicks into it (F6 takes the focus away)
    app.query_one("#prompt").insert(prompt)
    await pilot.press("enter")
    await wait_for(pilot, lambda: len(app.chat.conversation.turns) > before, what="the turn")
    if wait:
        await finished(pilot)


async def finished(pilot: Pilot) -> None:
    app = pilot.app
    assert isinstance(app, ReflectChatApp)
    chat = app.chat
    await wait_for(pilot, lambda: chat.conversation.turns[-1].finished and chat.live is None,
                   what="the answer to finish")
    await pilot.pause(0.1)
