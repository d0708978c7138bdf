"""One path from a backend's text pieces to channel events: used by `ask`, the UI and bench."""

from __future__ import annotations

import time
from collections.abc import Iterator

from reflectchat.engine.base import Generation, TagFormat
from reflectchat.reflection.answer import Answer
from reflectchat.reflection.events import ChannelEvent
from reflectchat.reflection.parser import ReflectionParser


def channel_events(
    generation: Generation, tag_format: TagFormat, answer: Answer
) -> Iterator[ChannelEvent]:
    """Parse the generation live, recording raw text and events into `answer`."""
    parser = ReflectionParser(tag_format, prefilled=generation.prefilled_thinking,
                              special=generation.special)
    answer.special = generation.special
    if answer.facts.start is None:
        answer.facts.start = time.perf_counter()
    for piece in generation:
        events = parser.feed(piece)
        answer.add_raw(piece, parser.channel, time.perf_counter())
        for event in events:
            answer.apply(event)
            yield event
    for event in parser.finish():
        answer.apply(event)
        yield event
