"""Runs one answer on a worker thread and posts it to the UI in batches.

Posting per token would tie generation speed to UI speed (elia's problem); posting every
`BATCH_SECONDS` keeps the UI's work per second constant whatever the token rate. What a batch
carries is read here, off the UI thread: each pane's new Markdown, the output so far, and at
the end the panes whole with what each reflection corrected. The UI reads the answer itself
only once it has ended (`StreamFinished`): until then this thread changes it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from textual.message import Message

from reflectchat.chat.answer_run import AnswerRun
from reflectchat.reflection.corrections import corrections_of
from reflectchat.reflection.events import EventKind
from reflectchat.ui.messages import StreamBatch, StreamFinished
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
