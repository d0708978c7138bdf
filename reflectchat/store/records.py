"""What the session store keeps: sessions, their messages, and search hits."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from reflectchat.engine.base import Sampling

CHANNELS = ("user", "thinking", "reflection", "output")  # what search can be limited to
TITLE_CHARS = 60


@dataclass(frozen=True)
class SessionMeta:
    """What a session runs with; updated when the user changes model or settings."""

    model: str = ""
    quant: str | None = None
    system_prompt: str = ""
    sampling: Sampling = field(default_factory=Sampling)
    gpu_layers: int | None = None
    n_ctx: int | None = None


@dataclass(frozen=True)
class SessionInfo:
    id: int
    title: str
    created: float
    updated: float
    meta: SessionMeta
    messages: int


@dataclass
class StoredMessage:
    """A user prompt (text in `raw`) or an answer: its raw model text and the parsed channels."""

    role: str  # "user" | "assistant"
    raw: str
    thinking: str = ""
    reflections: list[str] = field(default_factory=list)
    output: str = ""
    tag_format: str | None = None
    prefilled: bool = False
    finish_reason: str | None = None  # "interrupted" while an answer streams
    stats: dict[str, Any] | None = None
    created: float = 0.0
    seq: int = 0
    damaged: tuple[str, ...] = ()  # stored fields that could not be read (shown as empty)


@dataclass(frozen=True)
class SearchHit:
    session_id: int
    title: str
    updated: float
    seq: int  # the message's place in its session
    channel: str
    reflection: int  # the reflection's number (from 1) for reflection hits, else 0
    snippet: str  # matches are between MARK_START and MARK_END
    prompt: str | None = None  # the prompt of the turn it is in (None: a damaged session)

    @property
    def label(self) -> str:
        """What the hit is named by: its turn's prompt (first line, shortened), else the
        session's title."""
        return title_for(self.prompt) if self.prompt and self.prompt.strip() else self.title


MARK_START, MARK_END = "\x02", "\x03"


def title_for(prompt: str) -> str:
    """A session's default title: the first line of its first prompt, shortened."""
    line = next((x.strip() for x in prompt.splitlines() if x.strip()), "")
    line = " ".join(line.split())
    if len(line) > TITLE_CHARS:
        line = line[:TITLE_CHARS - 1].rstrip() + "…"
    return line or "Untitled"


def plain_number(value: object) -> bool:
    """A number as stored records hold them: not a bool, finite, and within 10^15 either way
    (JSON can carry 1e300 and a 400-digit integer, which turn into crashes later)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return abs(value) <= 1e15 if isinstance(value, int) else math.isfinite(value) and \
        abs(value) <= 1e15
