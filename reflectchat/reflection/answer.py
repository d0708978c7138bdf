"""An answer assembled from channel events: what `ask --json`, the store and the UI keep."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reflectchat.engine.base import TagFormat
from reflectchat.reflection.events import Channel, ChannelEvent, EventKind
from reflectchat.reflection.facts import ChannelFacts
from reflectchat.reflection.parser import parse_whole


@dataclass
class Answer:
    """Thinking (reflections removed), each reflection, output, and the exact raw model text.

    `marks` says where in the thinking each reflection came (an offset into `thinking`): the
    panes put a marker there, and what it corrected is read around it. This is the one fold of
    channel events into text; the panes and the corrections are read from it."""

    thinking: str = ""
    reflections: list[str] = field(default_factory=list)
    output: str = ""
    raw: str = ""
    facts: ChannelFacts = field(default_factory=ChannelFacts)  # tokens and time per channel
    marks: list[int] = field(default_factory=list)
    _section_starts: dict[Channel, bool] = field(
        default_factory=lambda: {Channel.THINKING: False, Channel.OUTPUT: False}, repr=False
    )
    # For each mark, how much output there was when it came: a reflection made in what later
    # turns out to be thinking (RECLASSIFY) keeps its place in that text.
    _output_at_mark: list[int] = field(default_factory=list, repr=False)

    @property
    def reasoning_tokens(self) -> int:
        """Pieces that went to thinking or reflection (about one a token)."""
        return self.facts.reasoning_tokens

    def add_raw(self, piece: str, channel: Channel, at: float | None = None) -> None:
        """Record a piece of model text, the channel it went to and when it came."""
        self.raw += piece
        self.facts.piece(channel, at)

    def apply(self, event: ChannelEvent) -> None:
        if event.kind is EventKind.RECLASSIFY:  # the output so far was thinking
            start = len(self.thinking) + 2 * bool(self.thinking and self.output)
            self.marks = [start + out if out else mark
                          for mark, out in zip(self.marks, self._output_at_mark, strict=True)]
            self._output_at_mark = [0] * len(self.marks)
            self.thinking = "\n\n".join(t for t in (self.thinking, self.output) if t)
            self.output = ""
            self.facts.output_was_thinking()
            self._section_starts[Channel.OUTPUT] = False
        elif event.channel is Channel.REFLECTION:
            if event.kind is EventKind.OPEN:
                self.reflections.append("")
                self.marks.append(len(self.thinking))
                self._output_at_mark.append(len(self.output))
            elif event.kind is EventKind.TEXT:
                self.reflections[-1] += event.text
        elif event.kind is EventKind.TEXT:
            # A new thinking or output section is joined to the previous one by a blank line.
            name = event.channel.value
            current = getattr(self, name)
            if current and self._section_starts[event.channel]:
                current += "\n\n"
            self._section_starts[event.channel] = False
            setattr(self, name, current + event.text)
        elif event.kind is EventKind.OPEN:
            self._section_starts[event.channel] = True

    @classmethod
    def from_raw(cls, raw: str, tag_format: TagFormat, prefilled: bool = False) -> Answer:
        """The answer a stored raw model text gives (the parser is deterministic)."""
        answer = cls(raw=raw)
        for event in parse_whole(raw, tag_format, prefilled):
            answer.apply(event)
        return answer

    def to_dict(self, finish_reason: str, stats: dict[str, Any]) -> dict[str, Any]:
        """`stats` with this answer's facts per channel added."""
        return {
            "thinking": self.thinking.strip(),
            "reflections": [r.strip() for r in self.reflections],
            "output": self.output.strip(),
            "raw": self.raw,
            "finish_reason": finish_reason,
            "stats": {**stats, **self.facts.to_dict(),
                      "reasoning_tokens": self.reasoning_tokens},
        }
