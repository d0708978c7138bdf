"""Runs one answer on a worker thread and posts it to the UI in batches.

Posting per token would tie generation speed to UI speed (elia's problem); posting every
`BATCH_SECONDS` keeps the UI's work per second constant whatever the token rate.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from textual.message import Message

from reflectchat.conversation import Turn
from reflectchat.engine.base import Backend, ChatMessage, FinishReason, GenerationStats, Sampling
from reflectchat.engine.errors import EngineError
from reflectchat.sessions.recorder import SessionRecorder
from reflectchat.stream import channel_events
from reflectchat.ui.messages import StreamBatch, StreamFinished

BATCH_SECONDS = 0.1


def stream_answer(
    post: Callable[[Message], object],
    backend: Backend,
    turn: Turn,
    messages: list[ChatMessage],
    sampling: Sampling,
    cancel: threading.Event,
    recorder: SessionRecorder | None = None,
) -> None:
    """Stream one answer; `recorder` checkpoints it and commits it when it ends."""
    start = time.perf_counter()
    try:
        generation = backend.generate(messages, sampling, cancel)
    except EngineError as exc:
        failed = GenerationStats(finish_reason=FinishReason.ERROR, error=str(exc))
        if recorder is not None:
            recorder.finish_turn(turn, failed)
        post(StreamFinished(turn, failed))
        return
    turn.prefilled = generation.prefilled_thinking
    answer, stats = turn.answer, generation.stats
    events: list = []
    sent_raw = 0
    first: float | None = None
    last_post = start

    def flush(now: float) -> None:
        nonlocal sent_raw, events
        post(StreamBatch(turn, events, answer.raw[sent_raw:], stats.completion_tokens,
                         answer.reasoning_tokens, first, now - start))
        sent_raw = len(answer.raw)
        events = []

    for event in channel_events(generation, turn.tag_format, answer):
        events.append(event)
        now = time.perf_counter()
        if first is None:
            first = now - start
        if now - last_post >= BATCH_SECONDS:
            flush(now)
            last_post = now
            if recorder is not None:
                recorder.checkpoint(turn)
    flush(time.perf_counter())
    if recorder is not None:
        recorder.finish_turn(turn, stats)
    post(StreamFinished(turn, stats))
