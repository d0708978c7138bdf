"""The Markdown of the three panes, built from channel events.

Each reflection becomes a numbered entry in the Reflection pane, and the Thinking pane gets a
numbered marker where it occurred; the two link to each other (`#reflection-N`,
`#thinking-N`). Once the answer is whole, the Reflection pane opens with a list of its
corrections and shows under each what changed (`reflection/corrections.py`). Model text is made
literal first: control characters become visible symbols.
"""

from __future__ import annotations

from reflectchat.chat.transcript import quoted, what_changed
from reflectchat.engine.base import TagFormat
from reflectchat.reflection.corrections import Correction, corrections
from reflectchat.reflection.events import Channel, ChannelEvent, EventKind
from reflectchat.reflection.parser import parse_whole
from reflectchat.untrusted import visible

REFLECTION_LINK = "#reflection-"
THINKING_LINK = "#thinking-"


def thinking_marker(n: int) -> str:
    return f"\n\n###### [↳ reflection {n}]({REFLECTION_LINK}{n})\n\n"


def reflection_heading(n: int) -> str:
    return f"\n\n#### [Reflection {n} ↑]({THINKING_LINK}{n})\n\n"


class PaneText:
    def __init__(self) -> None:
        self.raw = ""  # the exact model text, for the raw view
        self.reclassified = False  # the output so far turned out to be thinking
        self._clear()

    def _clear(self) -> None:
        self.text = {channel: "" for channel in Channel}
        self.reflections = 0
        self.entries: list[str] = []  # each reflection's Markdown, without its heading
        self.corrections: list[Correction] = []  # set once the answer is whole
        self._section_start = {channel: False for channel in Channel}
        self._events: list[ChannelEvent] = []  # kept until a reclassification is impossible
        self._settled = False

    def apply(self, event: ChannelEvent) -> dict[Channel, str]:
        """Add one event; returns what was appended to each pane. After a `RECLASSIFY` the
        panes are rebuilt (the output so far moves into the thinking): redraw them whole."""
        if event.kind is EventKind.RECLASSIFY:
            self._replay_as_thinking()
            return {}
        if not self._settled:
            self._events.append(event)
            if event.kind is EventKind.OPEN and event.channel is Channel.THINKING:
                self._settled, self._events = True, []
        added: dict[Channel, str] = {}
        channel = event.channel
        if event.kind is EventKind.OPEN:
            if channel is Channel.REFLECTION:
                self.reflections += 1
                n = self.reflections
                added[Channel.THINKING] = thinking_marker(n)
                added[Channel.REFLECTION] = reflection_heading(n)
                self.entries.append("")
            else:
                self._section_start[channel] = True
        elif event.kind is EventKind.TEXT:
            text = visible(event.text)
            if self._section_start[channel] and self.text[channel]:
                text = "\n\n" + text
            self._section_start[channel] = False
            added[channel] = text
            if channel is Channel.REFLECTION and self.entries:
                self.entries[-1] += text
        for pane, fragment in added.items():
            self.text[pane] += fragment
        return added

    def _replay_as_thinking(self) -> None:
        """Rebuild the panes from the events so far with output read as thinking, so each
        reflection's marker stays where it happened."""
        events = self._events
        self._clear()
        self._settled = self.reclassified = True
        for event in events:
            channel = Channel.THINKING if event.channel is Channel.OUTPUT else event.channel
            self.apply(ChannelEvent(event.kind, channel, event.text))

    def settle(self, tag_format: TagFormat, prefilled: bool = False) -> None:
        """The answer is whole: find what each reflection corrected."""
        self.corrections = corrections(self.raw, tag_format, prefilled)

    def pane(self, channel: Channel) -> str:
        """A pane's Markdown. A whole answer's Reflection pane opens with its corrections at a
        glance: each reflection with the sentence of thinking it followed (a link to it), and
        under each reflection what changed, the claim before it beside the claim after it."""
        if channel is not Channel.REFLECTION or not self.corrections:
            return self.text[channel]
        found = self.corrections
        listing = "\n".join(
            f"{c.n}. [{quoted(visible(c.before)) or 'at the start'}]({REFLECTION_LINK}{c.n})"
            for c in found)
        text = f"**{len(found)} correction{'s' * (len(found) != 1)}**, each after:\n\n{listing}"
        for c, entry in zip(found, self.entries, strict=False):
            text += reflection_heading(c.n) + entry.strip() + "\n\n" + what_changed(c, visible)
        return text

    @classmethod
    def from_raw(cls, raw: str, tag_format: TagFormat, prefilled: bool = False) -> PaneText:
        """Rebuild the panes of a stored answer from its raw model text."""
        panes = cls()
        panes.raw = raw
        for event in parse_whole(raw, tag_format, prefilled):
            panes.apply(event)
        panes.settle(tag_format, prefilled)
        return panes
