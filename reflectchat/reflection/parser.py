"""Streaming parser that splits a model's answer into thinking, reflection and output channels.

The parser takes text pieces of any size and emits `ChannelEvent`s as soon as they are
unambiguous. It holds back only what could still change meaning: a possible partial tag
(`<refl`), a run of backticks that may grow, and whitespace at the end of a section (a
section's leading and trailing whitespace is dropped, so `"<output>\\n 42 \\n</output>"` yields
the output text `"42"`). The events never depend on how the stream was chunked, apart from how
the text of one section is split between `TEXT` events.

Tag formats:
- ``reflection``: `<thinking>` with nested `<reflection>` blocks, then `<output>`.
- ``think``: `<think>...</think>` then an untagged answer (R1, QwQ).
- ``plain``: no tags; everything is output.
- ``auto``: the first recognised tag decides between ``reflection`` and ``think``.

Untagged text goes to the output channel. Unknown tags, stray closing tags and tags inside
Markdown code (inline spans anywhere, fenced blocks in the output) are kept as text. One closing
tag is not stray: a thinking section closed before any was opened (``...</think>answer``) means
the prompt opened it (a server's template we cannot see, a template that prefills it), so the
untagged text so far was thinking: the parser emits `RECLASSIFY` and goes on as if `prefilled`
had been given. Once a thinking or an explicit output section has begun, such a tag is text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from reflectchat.engine.base import TagFormat
from reflectchat.reflection.events import Channel, ChannelEvent, EventKind

# What each tag does, per format and per innermost open section (None = top level).
# "open:X" pushes a section, "close" pops one, "close_all:X" pops everything and opens X,
# "close_thinking" pops a reflection and the thinking around it.
_REFLECTION_RULES: dict[Channel | None, dict[str, str]] = {
    None: {
        "<thinking>": "open:thinking",
        "<reflection>": "open:reflection",
        "<output>": "open:output",
    },
    Channel.THINKING: {
        "<reflection>": "open:reflection",
        "</thinking>": "close",
        "<output>": "close_all:output",
    },
    Channel.REFLECTION: {
        "</reflection>": "close",
        "</thinking>": "close_thinking",
        "<output>": "close_all:output",
    },
    Channel.OUTPUT: {"</output>": "close"},
}
_THINK_RULES: dict[Channel | None, dict[str, str]] = {
    None: {"<think>": "open:thinking"},
    Channel.THINKING: {"</think>": "close"},
}
_RULES = {TagFormat.REFLECTION: _REFLECTION_RULES, TagFormat.THINK: _THINK_RULES}
_AUTO_TOP = {**_REFLECTION_RULES[None], **_THINK_RULES[None]}
# Before any thinking or explicit output: a closing thinking tag says the prompt opened it.
_UNOPENED_CLOSE = {TagFormat.REFLECTION: {"</thinking>": "reclassify"},
                   TagFormat.THINK: {"</think>": "reclassify"}}
_UNOPENED_CLOSE[TagFormat.AUTO] = {**_UNOPENED_CLOSE[TagFormat.REFLECTION],
                                   **_UNOPENED_CLOSE[TagFormat.THINK]}

_SPECIAL = re.compile(r"[<`]")


@dataclass
class _Section:
    channel: Channel
    explicit: bool  # opened by a tag (False: untagged top-level output)
    has_text: bool = False
    pending_ws: str = ""


class ReflectionParser:
    """Incremental tag parser. Call `feed` with each piece, then `finish` once."""

    def __init__(self, tag_format: TagFormat = TagFormat.REFLECTION, prefilled: bool = False):
        """`prefilled`: the chat template already wrote the opening thinking tag."""
        self.tag_format = tag_format
        self._buf = ""
        self._stack: list[_Section] = []
        self._events: list[ChannelEvent] = []
        self._code: tuple[str, int] | None = None  # ("inline" | "fence", backtick count)
        self._line_blank = True
        self._begun = False  # a thinking or explicit output section has been opened
        if prefilled and tag_format is not TagFormat.PLAIN:
            if tag_format is TagFormat.AUTO:
                self.tag_format = TagFormat.THINK
            self._open(Channel.THINKING)

    # -- public API ---------------------------------------------------------------------------

    def feed(self, text: str) -> list[ChannelEvent]:
        self._buf += text
        self._drain(final=False)
        return self._take()

    def finish(self) -> list[ChannelEvent]:
        self._drain(final=True)
        while self._stack:
            self._close()
        return self._take()

    # -- scanning -----------------------------------------------------------------------------

    def _take(self) -> list[ChannelEvent]:
        events, self._events = self._events, []
        return events

    def _drain(self, final: bool) -> None:
        buf, i, n = self._buf, 0, len(self._buf)
        while i < n:
            ch = buf[i]
            if ch == "<":
                rules = self._rules()
                if rules:
                    tag, partial = _match_tag(buf, i, rules)
                    if partial and not final:
                        break
                    if tag:
                        self._on_tag(tag, rules[tag])
                        i += len(tag)
                        continue
                self._text("<")
                i += 1
            elif ch == "`":
                j = i
                while j < n and buf[j] == "`":
                    j += 1
                if j == n and not final:
                    break
                self._on_backticks(j - i)
                i = j
            else:
                m = _SPECIAL.search(buf, i)
                j = m.start() if m else n
                self._text(buf[i:j])
                i = j
        self._buf = buf[i:]

    def _rules(self) -> dict[str, str]:
        if self._code is not None or self.tag_format is TagFormat.PLAIN:
            return {}
        top = self._stack[-1] if self._stack else None
        where = top.channel if top and top.explicit else None
        if self.tag_format is TagFormat.AUTO:
            rules = _AUTO_TOP if where is None else {}
        else:
            rules = _RULES[self.tag_format].get(where, {})
        if where is None and not self._begun:
            return {**rules, **_UNOPENED_CLOSE[self.tag_format]}
        return rules

    # -- state changes ------------------------------------------------------------------------

    def _on_tag(self, tag: str, action: str) -> None:
        if self.tag_format is TagFormat.AUTO:
            think = tag in _THINK_RULES[None] or tag in _UNOPENED_CLOSE[TagFormat.THINK]
            self.tag_format = TagFormat.THINK if think else TagFormat.REFLECTION
        verb, _, arg = action.partition(":")
        if verb == "reclassify":
            self._reclassify(tag)
            return
        if self._stack and not self._stack[-1].explicit:
            self._close()
        if verb == "open":
            self._open(Channel(arg))
        elif verb == "close":
            self._close()
        elif verb == "close_thinking":
            self._close()
            if self._stack and self._stack[-1].channel is Channel.THINKING:
                self._close()
        elif verb == "close_all":
            while self._stack:
                self._close()
            self._open(Channel(arg))
        self._line_blank = True

    def _reclassify(self, tag: str) -> None:
        """The untagged output so far was thinking, and the thinking ends here."""
        if self._stack:  # the untagged output section: it was never output
            self._stack.pop()
        self._begun = True
        self._events.append(ChannelEvent(EventKind.RECLASSIFY, Channel.THINKING, tag))
        self._events.append(ChannelEvent(EventKind.CLOSE, Channel.THINKING))
        self._line_blank = True

    def _open(self, channel: Channel, explicit: bool = True) -> None:
        if explicit and channel is not Channel.REFLECTION:
            self._begun = True
        self._stack.append(_Section(channel, explicit))
        self._events.append(ChannelEvent(EventKind.OPEN, channel))

    def _close(self) -> None:
        section = self._stack.pop()
        self._events.append(ChannelEvent(EventKind.CLOSE, section.channel))

    @property
    def channel(self) -> Channel:
        """The channel that text fed now would go to."""
        return self._stack[-1].channel if self._stack else Channel.OUTPUT

    def _on_backticks(self, count: int) -> None:
        code = self._code
        if code is None:
            fence = count >= 3 and self._line_blank and self.channel is Channel.OUTPUT
            self._code = ("fence" if fence else "inline", count)
        else:
            kind, opened = code
            closes = count == opened if kind == "inline" else count >= opened and self._line_blank
            if closes:
                self._code = None
        self._text("`" * count)

    def _text(self, text: str) -> None:
        if "\n" in text:
            if self._code is not None and self._code[0] == "inline":
                self._code = None  # inline code spans end at the end of the line
            self._line_blank = not text.rpartition("\n")[2].strip()
        elif text.strip():
            self._line_blank = False
        self._content(text)

    def _content(self, text: str) -> None:
        body = text.rstrip()
        if not body:
            if self._stack and self._stack[-1].has_text:
                self._stack[-1].pending_ws += text
            return
        if not self._stack:
            self._open(Channel.OUTPUT, explicit=False)
        section = self._stack[-1]
        if not section.has_text:
            body = body.lstrip()
            section.has_text = True
        self._events.append(
            ChannelEvent(EventKind.TEXT, section.channel, section.pending_ws + body)
        )
        section.pending_ws = text[len(text.rstrip()) :]


def parse_whole(text: str, tag_format: TagFormat, prefilled: bool = False) -> list[ChannelEvent]:
    """The events of a complete text, e.g. a stored answer's raw model text."""
    parser = ReflectionParser(tag_format, prefilled)
    return parser.feed(text) + parser.finish()


def _match_tag(buf: str, i: int, rules: dict[str, str]) -> tuple[str | None, bool]:
    """The tag at buf[i], or whether buf[i:] is a strict prefix of one (needs more input)."""
    rest = buf[i : i + 16]
    for tag in rules:
        if rest.startswith(tag):
            return tag, False
    return None, any(tag.startswith(rest) for tag in rules)
