"""An answer assembled from channel events: what `ask --json`, the store and the UI keep."""

from __future__ import annotations

from typing import Any

from reflectchat.engine.base import TagFormat
from reflectchat.engine.special_marks import SpecialMarks
from reflectchat.reflection.events import Channel, ChannelEvent, EventKind
from reflectchat.reflection.facts import ChannelFacts
from reflectchat.reflection.growing_text import GrowingText
from reflectchat.reflection.parser import parse_whole


class Answer:
    """Thinking (reflections removed), each reflection, output, and the exact raw model text.

    `marks` says where in the thinking each reflection came (an offset into `thinking`): the
    panes put a marker there, and what it corrected is read around it. This is the one fold of
    channel events into text; the panes and the corrections are read from it. The texts grow
    a piece at a time (`GrowingText`), so assembling a long answer costs the same per piece."""

    def __init__(self, thinking: str = "", reflections: list[str] | None = None,
                 output: str = "", raw: str = "", facts: ChannelFacts | None = None,
                 special: SpecialMarks | None = None, marks: list[int] | None = None) -> None:
        """`special`: where the raw text's special tokens are (None: not known); `marks`:
        where in `thinking` each reflection came (a stored answer's, read back)."""
        self._thinking, self._output = GrowingText(thinking), GrowingText(output)
        self._raw = GrowingText(raw)
        self._reflections = [GrowingText(r) for r in reflections or []]
        self.facts = facts if facts is not None else ChannelFacts()  # tokens, time per channel
        self.special = special
        self.marks: list[int] = list(marks or [])
        self._length = {Channel.THINKING: len(thinking), Channel.OUTPUT: len(output)}
        self._section_starts = {Channel.THINKING: False, Channel.OUTPUT: False}
        # For each mark, how much output there was when it came: a reflection made in what
        # later turns out to be thinking (RECLASSIFY) keeps its place in that text.
        self._output_at_mark: list[int] = [0] * len(self.marks)

    def __repr__(self) -> str:
        """Sizes, not texts: Textual names a worker by the repr of its arguments, on the UI
        thread, and an answer passed to one may be megabytes, still growing on another."""
        return (f"<Answer: {self._length[Channel.THINKING]:,} characters of thinking, "
                f"{len(self._reflections)} reflections, {self._length[Channel.OUTPUT]:,} of "
                "output>")

    @property
    def thinking(self) -> str:
        return str(self._thinking)

    @property
    def output(self) -> str:
        return str(self._output)

    @property
    def raw(self) -> str:
        return str(self._raw)

    @property
    def reflections(self) -> list[str]:
        return [str(r) for r in self._reflections]

    @property
    def reflection_count(self) -> int:
        return len(self._reflections)

    @property
    def reasoning_tokens(self) -> int:
        """Pieces that went to thinking or reflection (about one a token)."""
        return self.facts.reasoning_tokens

    def add_raw(self, piece: str, channel: Channel, at: float | None = None) -> None:
        """Record a piece of model text, the channel it went to and when it came."""
        self._raw.append(piece)
        self.facts.piece(channel, at)

    def apply(self, event: ChannelEvent) -> None:
        if event.kind is EventKind.RECLASSIFY:  # the output so far was thinking
            thinking, output = self.thinking, self.output
            start = len(thinking) + 2 * bool(thinking and output)
            self.marks = [start + out if out else mark
                          for mark, out in zip(self.marks, self._output_at_mark, strict=True)]
            self._output_at_mark = [0] * len(self.marks)
            thinking = "\n\n".join(t for t in (thinking, output) if t)
            self._thinking, self._output = GrowingText(thinking), GrowingText()
            self._length = {Channel.THINKING: len(thinking), Channel.OUTPUT: 0}
            self.facts.output_was_thinking()
            self._section_starts[Channel.OUTPUT] = False
        elif event.channel is Channel.REFLECTION:
            if event.kind is EventKind.OPEN:
                self._reflections.append(GrowingText())
                self.marks.append(self._length[Channel.THINKING])
                self._output_at_mark.append(self._length[Channel.OUTPUT])
            elif event.kind is EventKind.TEXT:
                self._reflections[-1].append(event.text)
        elif event.kind is EventKind.TEXT:
            # A new thinking or output section is joined to the previous one by a blank line.
            channel = event.channel
            text = self._thinking if channel is Channel.THINKING else self._output
            if self._length[channel] and self._section_starts[channel]:
                text.append("\n\n")
                self._length[channel] += 2
            self._section_starts[channel] = False
            text.append(event.text)
            self._length[channel] += len(event.text)
        elif event.kind is EventKind.OPEN:
            self._section_starts[event.channel] = True

    @classmethod
    def from_raw(cls, raw: str, tag_format: TagFormat, prefilled: bool = False,
                 special: SpecialMarks | None = None) -> Answer:
        """The answer a stored raw model text gives (the parser is deterministic)."""
        answer = cls(raw=raw, special=special)
        for event in parse_whole(raw, tag_format, prefilled, special):
            answer.apply(event)
        return answer

    def to_dict(self, finish_reason: str, stats: dict[str, Any]) -> dict[str, Any]:
        """`stats` with this answer's facts per channel added."""
        special = {"special": self.special.to_dict()} if self.special else {}
        return {
            "thinking": self.thinking.strip(),
            "reflections": [r.strip() for r in self.reflections],
            "output": self.output.strip(),
            "raw": self.raw,
            "finish_reason": finish_reason,
            "stats": {**stats, **self.facts.to_dict(),
                      "reasoning_tokens": self.reasoning_tokens, **special},
        }
