"""Messages from worker threads to the UI. Workers post them (thread-safe, non-blocking); the
UI never waits on a worker, and a worker never waits on the UI."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from reflectchat.chat.conversation import Conversation, Turn
from reflectchat.engine.base import Backend, GenerationStats
from reflectchat.reflection.corrections import Correction
from reflectchat.reflection.events import Channel
from reflectchat.reflection.facts import ChannelFacts
from reflectchat.store.records import SearchHit, SessionInfo, StoredMessage


@dataclass
class StreamBatch(Message):
    """What one batch interval added to an answer: each pane's new Markdown (or, when
    `whole`, each pane's Markdown from the start: text moved between panes) and the raw text,
    with what the UI reads of the answer while it streams (the output so far, the number of
    reflections): copies made on the worker, which goes on changing the answer itself."""

    turn: Turn
    panes: dict[Channel, str]
    whole: bool
    raw: str
    prompt_tokens: int
    completion_tokens: int
    facts: ChannelFacts  # a copy, as it stood when the batch was sent
    first_token_s: float | None
    elapsed_s: float
    speculation: str | None = None  # "spec 71% · 2.1x" once anything was drafted
    output: str = ""  # the answer's output so far
    reflections: int = 0  # how many reflections it holds so far

    @property
    def tokens_per_second(self) -> float | None:
        """The decoding speed so far: the tokens after the first over the time since it."""
        tokens, first = self.completion_tokens, self.first_token_s
        if first is None or self.elapsed_s <= first or tokens <= 1:
            return None
        return (tokens - 1) / (self.elapsed_s - first)


@dataclass
class StreamFinished(Message):
    """The answer ended: its stats, what each reflection corrected and the panes whole, all
    read on the worker from the answer it folded."""

    turn: Turn
    stats: GenerationStats
    corrections: list[Correction]
    panes: dict[Channel, str]


@dataclass
class LoadProgress(Message):
    fraction: float


@dataclass
class LoadFinished(Message):
    """A load ended: the engine it made, or why it failed (the worker never assigns the app's
    engine itself: only the UI thread does, here)."""

    engine: Backend | None
    error: str | None = None


@dataclass
class TurnSaved(Message):
    """A prompt was committed to the store (in this session; None: the store failed)."""

    session_id: int | None


@dataclass
class ContextResumed(Message):
    """The session's saved model context was put back (or why it was not: `text` says)."""

    text: str


@dataclass
class SessionRead(Message):
    """A session read from the store on a worker, its answers parsed, ready to show (or why
    it could not be read)."""

    session_id: int
    hit: SearchHit | None
    info: SessionInfo | None = None
    messages: list[StoredMessage] | None = None
    conversation: Conversation | None = None
    error: str | None = None


@dataclass
class ContextFreed(Message):
    """F9 took `dropped` out of what goes back to the model; the tokens sent before and after,
    counted on a worker (None: not counted)."""

    dropped: str
    before: int | None
    after: int | None


@dataclass
class ContextTrimmed(Message):
    """The oldest turns were left out of the prompt to fit the context."""

    dropped: int
    kept: int
    n_ctx: int


@dataclass
class StoreProblem(Message):
    text: str


@dataclass
class DownloadProgress(Message):
    done: int
    total: int
    bytes_per_second: float


@dataclass
class DownloadFinished(Message):
    model: str
    quant: str
    error: str | None  # None: downloaded and verified


@dataclass
class CompareNote(Message):
    """How a comparison's two answers are getting on (loading, waiting, taking turns)."""

    text: str
