"""One answer from start to finish, the same for `ask` and the app: the backend generates, the
reflection parser turns its pieces into channel events (kept in the turn's answer), a recorder
keeps saving the answer while it streams (on its own thread) and commits it when it ends, and
the caller sees each event as it comes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from typing import Literal, NamedTuple, Protocol

from reflectchat.chat.conversation import Turn
from reflectchat.engine.base import (
    Backend,
    ChatMessage,
    FinishReason,
    GenerationStats,
    Sampling,
    TagFormat,
)
from reflectchat.engine.errors import EngineError
from reflectchat.reflection.dialects import family_of
from reflectchat.reflection.events import ChannelEvent, EventKind
from reflectchat.reflection.stream import channel_events


class TurnRecorder(Protocol):
    """Keeps a streaming answer somewhere safe (the session store's recorder)."""

    def saving(self, turn: Turn) -> AbstractContextManager[Callable[[], None]]:
        """Saves the answer now and then while the block runs; the function it gives is
        called between events, when the answer is whole."""
        ...

    def finish_turn(self, turn: Turn, stats: GenerationStats) -> None: ...


def settle_unopened_thinking(turn: Turn, closing_tag: str) -> None:
    """The model closed thinking it never opened: its prompt opened it, as a prefilling
    template does. Record that, so the stored raw text parses back to the same answer."""
    turn.prefilled = True
    if turn.tag_format == TagFormat.AUTO:
        turn.tag_format = family_of(closing_tag)


class AnswerRun:
    """Iterate `events()` once; `stats` is final when it ends, and the recorder has the answer.
    A backend that fails, before or during the answer, ends it with an error in `stats`."""

    def __init__(self, backend: Backend, turn: Turn, messages: list[ChatMessage],
                 sampling: Sampling, cancel: threading.Event,
                 recorder: TurnRecorder | None = None) -> None:
        self.backend, self.turn, self.messages = backend, turn, messages
        self.sampling, self.cancel, self.recorder = sampling, cancel, recorder
        self.stats = GenerationStats()

    def events(self) -> Iterator[ChannelEvent]:
        turn = self.turn
        turn.answer.facts.start = time.perf_counter()  # the request: times count from here
        saving = self.recorder.saving(turn) if self.recorder is not None else \
            nullcontext(lambda: None)
        try:
            generation = self.backend.generate(self.messages, self.sampling, self.cancel,
                                               turn.tag_format)
            turn.prefilled = generation.prefilled_thinking
            self.stats = generation.stats
            with saving as between_events:
                for event in channel_events(generation, turn.tag_format, turn.answer):
                    if event.kind is EventKind.RECLASSIFY:
                        settle_unopened_thinking(turn, event.text)
                    yield event
                    between_events()
        except EngineError as exc:
            self.stats = GenerationStats(finish_reason=FinishReason.ERROR, error=str(exc))
        if self.recorder is not None:
            self.recorder.finish_turn(turn, self.stats)


LOOP_NOTE = "Stopped: the model was repeating itself. The answer so far is kept."


def length_note(stats: GenerationStats, limit: int | None, raise_it: str) -> str:
    """Why an answer that ended at a limit ended there; `raise_it` says how to allow more."""
    if limit is not None and stats.completion_tokens >= limit:
        return (f"The answer reached its limit of {limit:,} tokens and was cut short; "
                f"{raise_it} allows more.")
    return ("The answer filled the model's context and was cut short; a new chat or a larger "
            "context (--ctx) leaves more room.")


class EndNote(NamedTuple):
    text: str
    severity: Literal["information", "warning", "error"]
    title: str = ""
    timeout: float | None = None  # None: the notification's default


def end_notes(turn: Turn, stats: GenerationStats, max_tokens: int | None,
              raise_it: str) -> list[EndNote]:
    """What the user is told when an answer ends: it failed, was cut at the token limit
    (`raise_it`: where the limit is raised), stopped repeating itself or by the user; and what
    the reasoning asked for did."""
    notes = []
    if stats.error:
        notes.append(EndNote(stats.error, "error", "Answer failed", 15))
    elif stats.finish_reason is FinishReason.LENGTH:
        notes.append(EndNote(length_note(stats, max_tokens, raise_it), "warning", "", 12))
    elif stats.finish_reason is FinishReason.LOOP:
        notes.append(EndNote(LOOP_NOTE, "warning", "", 12))
    elif turn.stopped:
        notes.append(EndNote("Stopped; the partial answer is kept.", "warning"))
    if stats.reasoning_note:
        notes.append(EndNote(stats.reasoning_note.capitalize() + ".", "information"))
    return notes
