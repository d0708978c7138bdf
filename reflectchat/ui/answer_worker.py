"""Runs one answer on a worker thread and posts it to the UI in batches.

Posting per token would tie generation speed to UI speed (elia's problem); posting every
`BATCH_SECONDS` keeps the UI's work per second constant whatever the token rate. What a batch
carries is read here, off the UI thread: each pane's new Markdown, the output so far, and at
the end the panes whole with what each reflection corrected. The UI reads the answer itself
only once it has ended (`StreamFinished`): until then this thread changes it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from textual.message import Message

from reflectchat.chat.answer_run import AnswerRun
from reflectchat.chat.conversation import Turn, answer_reserve, fit_context
from reflectchat.config import ConfigFile
from reflectchat.engine import saved_context
from reflectchat.engine.base import Backend, ChatMessage, Sampling
from reflectchat.engine.errors import EngineError
from reflectchat.models.loading import measure_answer
from reflectchat.reflection.corrections import corrections_of
from reflectchat.reflection.events import EventKind
from reflectchat.store.recorder import SessionRecorder
from reflectchat.ui.messages import (
    ContextResumed,
    ContextTrimmed,
    StoreProblem,
    StreamBatch,
    StreamFinished,
    TurnSaved,
)
from reflectchat.ui.pane_text import PaneGrowth, panes

BATCH_SECONDS = 0.1


def stream_answer(post: Callable[[Message], object], run: AnswerRun) -> None:
    """Stream one answer, posting what came every `BATCH_SECONDS` and once at the end."""
    start = time.perf_counter()
    turn, answer = run.turn, run.turn.answer
    growth = PaneGrowth()
    whole = False  # text moved between panes since the last batch: send them whole
    sent_raw = 0
    first: float | None = None
    last_post = start

    def flush(now: float) -> None:
        nonlocal sent_raw, whole
        post(StreamBatch(turn, growth.read(answer), whole, answer.raw[sent_raw:],
                         run.stats.prompt_tokens, run.stats.completion_tokens,
                         answer.facts.snapshot(), first, now - start,
                         run.stats.speculation_text(), answer.output,
                         answer.reflection_count))
        sent_raw = len(answer.raw)
        whole = False

    for event in run.events():
        if event.kind is EventKind.RECLASSIFY:
            growth.reset()
            whole = True
        now = time.perf_counter()
        if first is None:
            first = now - start
        if now - last_post >= BATCH_SECONDS:
            flush(now)
            last_post = now
    flush(time.perf_counter())
    found = corrections_of(answer)
    post(StreamFinished(turn, run.stats, found, panes(answer, found)))


def answer_turn(engine: Backend, turn: Turn, sampling: Sampling, messages: list[ChatMessage],
                cancel: threading.Event, recorder: SessionRecorder | None,
                post: Callable[[Message], object],
                post_stream: Callable[[Message], object]) -> None:
    """One turn, on a worker thread: its prompt committed to the session, the conversation
    fitted to the context, the answer streamed (`post_stream`: its batches, to the answer
    view) and recorded, this machine's speed measured and the model's context kept for the
    next time the session opens. `post`: what the chat hears (saved, trimmed)."""
    session = None
    if recorder is not None:
        recorder.start_turn(turn)
        session = recorder.session_id
        post(TurnSaved(session))
    answer_fitted(engine, turn, sampling, messages, cancel, recorder, post, post_stream)
    if session is not None:  # within the saved contexts' disk budget
        try:
            saved_context.keep(engine, session, ConfigFile().context_budget())
        except saved_context.ContextNotSaved as exc:
            post(StoreProblem(str(exc)))


def answer_fitted(engine: Backend, turn: Turn, sampling: Sampling, messages: list[ChatMessage],
                  cancel: threading.Event, recorder: SessionRecorder | None,
                  post: Callable[[Message], object],
                  post_stream: Callable[[Message], object]) -> None:
    """The answer of a turn already started in the session: the conversation fitted to the
    context (what was dropped is posted), streamed and recorded, and the speed measured."""
    n_ctx = engine.n_ctx
    try:
        messages, dropped = fit_context(messages, engine.count_tokens,
                                        n_ctx - answer_reserve(n_ctx, sampling))
    except EngineError:
        dropped = 0  # the chat template failed: generating reports it
    if dropped:
        kept = sum(m.role == "assistant" for m in messages)
        post(ContextTrimmed(dropped, kept, n_ctx))
    run = AnswerRun(engine, turn, messages, sampling, cancel, recorder)
    stream_answer(post_stream, run)
    measure_answer(engine, run.stats)


# what restoring says nothing of: a new chat, the context already in the model, a server
QUIET = ("none was saved", "the model holds it already", "a server keeps its own context")


def restore_context(engine: Backend, session: int, post: Callable[[Message], object]) -> None:
    """Put a session's saved model context back, on a worker thread (an answer asked
    meanwhile waits for it on the engine's lock); what it did is posted unless there was
    nothing to say."""
    done = saved_context.resume(engine, session)
    if done["tokens"] or done["why"] not in QUIET:
        post(ContextResumed(saved_context.resumed_text(done)))
