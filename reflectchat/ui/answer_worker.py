"""Runs one answer on a worker thread and posts it to the UI in batches.

Posting per token would tie generation speed to UI speed (elia's problem); posting every
`BATCH_SECONDS` keeps the UI's work per second constant whatever the token rate.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from textual.message import Message

from reflectchat.chat.answer_run import AnswerRun
from reflectchat.reflection.events import ChannelEvent
from reflectchat.ui.messages import StreamBatch, StreamFinished

BATCH_SECONDS = 0.1


def stream_answer(post: Callable[[Message], object], run: AnswerRun) -> None:
    """Stream one answer, posting what came every `BATCH_SECONDS` and once at the end."""
    start = time.perf_counter()
    turn, answer = run.turn, run.turn.answer
    events: list[ChannelEvent] = []
    sent_raw = 0
    first: float | None = None
    last_post = start

    def flush(now: float) -> None:
        nonlocal sent_raw, events
        post(StreamBatch(turn, events, answer.raw[sent_raw:], run.stats.prompt_tokens,
                         run.stats.completion_tokens, answer.facts.snapshot(), first,
                         now - start))
        sent_raw = len(answer.raw)
        events = []

    for event in run.events():
        events.append(event)
        now = time.perf_counter()
        if first is None:
            first = now - start
        if now - last_post >= BATCH_SECONDS:
            flush(now)
            last_post = now
    flush(time.perf_counter())
    post(StreamFinished(turn, run.stats))
