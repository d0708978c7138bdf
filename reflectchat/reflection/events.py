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
    # The output so far was thinking: the model closed a thinking section it never opened, so
    # its opening tag was in the prompt (a template we cannot see). The text is the closing tag
    # ("</think>" or "</thinking>"); CLOSE thinking follows.
    RECLASSIFY = "reclassify"


@dataclass(frozen=True, slots=True)
class ChannelEvent:
    kind: EventKind
    channel: Channel
    text: str = ""
