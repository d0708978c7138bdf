"""What the reflection parser emits: which channel text belongs to (thinking, reflection,
output), and open/text/close events. The tag formats it reads are the engine's `TagFormat`."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Channel(str, Enum):
    THINKING = "thinking"
    REFLECTION = "reflection"
    OUTPUT = "output"


class EventKind(str, Enum):
    OPEN = "open"
    TEXT = "text"
    CLOSE = "close"


@dataclass(frozen=True, slots=True)
class ChannelEvent:
    kind: EventKind
    channel: Channel
    text: str = ""
