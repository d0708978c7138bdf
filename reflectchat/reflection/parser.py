"""Streaming parser that splits a model's answer into thinking, reflection and output channels.

The parser takes text pieces of any size and emits `ChannelEvent`s as soon as they are
unambiguous. It holds back only what could still change meaning: a possible partial marker
(`<refl`, `[TH`, a harmony header waiting for its `<|message|>`), a run of backticks that may
grow, and whitespace at the end of a section (a section's leading and trailing whitespace is
dropped, so `"<output>\\n 42 \\n</output>"` yields the output text `"42"`). The events never
depend on how the stream was chunked, apart from how the text of one section is split between
`TEXT` events.

Which markers mean what is the format's dialect (`dialects.py`); with ``auto`` the first
recognised marker picks the family. Untagged text goes to the output channel. Unknown tags,
stray closing tags and tags inside Markdown code (inline spans anywhere, fenced blocks in the
output) are kept as text. One closing tag is not stray: a thinking section closed before any
was opened (``...</think>answer``) means the prompt opened it (a server's template we cannot
see, a template that prefills it), so the untagged text so far was thinking: the parser emits
`RECLASSIFY` and goes on as if `prefilled` had been given. Once a thinking or an explicit output
section has begun, such a tag is text.

A marker made of special tokens (`<|channel|>`, a GGUF's `<think>`) moves the parser only where
it arrived as those tokens, when the engine says where they are (`SpecialMarks`, from a model
run here); a server's text has no such marks, and every marker is matched as text.
"""

from __future__ import annotations

from dataclasses import dataclass

from reflectchat.engine.base import TagFormat
from reflectchat.engine.families import HARMONY_CONSTRAIN, HARMONY_MESSAGE
from reflectchat.engine.special_marks import SpecialMarks
from reflectchat.reflection.dialects import Dialect, dialect, family_of
from reflectchat.reflection.events import Channel, ChannelEvent, EventKind

_HEADER_ROOM = 256  # a harmony header or role longer than this is text, not markup


@dataclass
class _Section:
    channel: Channel
    explicit: bool  # opened by a tag (False: untagged top-level output)
    has_text: bool = False
    pending_ws: str = ""


class ReflectionParser:
    """Incremental tag parser. Call `feed` with each piece, then `finish` once."""

    def __init__(self, tag_format: TagFormat = TagFormat.REFLECTION, prefilled: bool = False,
                 special: SpecialMarks | None = None):
        """`prefilled`: the chat template already wrote the opening thinking tag; `special`:
        where the text's special tokens are (None: match markers as text)."""
        if prefilled and tag_format == TagFormat.AUTO:
            tag_format = TagFormat.THINK
        self._use(tag_format)
        self._buf = ""
        self._consumed = 0  # the text's offset of _buf[0]
        self._special = special
        self._stack: list[_Section] = []
        self._events: list[ChannelEvent] = []
        self._code: tuple[str, int] | None = None  # ("inline" | "fence", backtick count)
        self._line_blank = True
        self._begun = False  # a thinking or explicit output section has been opened
        self._rest = False  # a wrapped answer ended: nothing more is shown
        if prefilled and self._dialect.opener is not None:
            self._open(Channel.THINKING)

    def _use(self, tag_format: TagFormat) -> None:
        self.tag_format = tag_format
        self._dialect: Dialect = dialect(tag_format)
        self._starts = self._dialect.starts()
        self._longest = self._dialect.longest()

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
        if self._rest:  # the answer ended: what follows is the template's markup
            self._consumed += len(self._buf)
            self._buf = ""
            return
        buf, i, n = self._buf, 0, len(self._buf)
        while i < n:
            ch = buf[i]
            if ch == "`":
                j = i
                while j < n and buf[j] == "`":
                    j += 1
                if j == n and not final:
                    break
                self._on_backticks(j - i)
                i = j
                continue
            rules = self._rules()
            if rules:
                tag, partial = _match_tag(buf, i, rules, self._longest)
                if partial and not final:
                    break
                if tag and self._special is not None and \
                        not self._special.arrived(tag, self._consumed + i):
                    tag = None  # its special tokens' text, written as plain text
                if tag:
                    took = self._on_tag(tag, rules[tag], buf, i + len(tag), final)
                    if took is None:  # a harmony header not whole yet
                        break
                    i = took
                    continue
            m = self._starts.search(buf, i + 1)
            j = m.start() if m else n
            self._text(buf[i:j])
            i = j
        self._consumed += i
        self._buf = buf[i:]

    def _rules(self) -> dict[str, str]:
        if self._code is not None:
            return {}
        top = self._stack[-1] if self._stack else None
        where = top.channel if top and top.explicit else None
        rules = self._dialect.at(where)
        if where is None and not self._begun and self._dialect.unopened:
            return {**rules, **self._dialect.unopened}
        return rules

    # -- state changes ------------------------------------------------------------------------

    def _on_tag(self, tag: str, action: str, buf: str, after: int, final: bool) -> int | None:
        """Act on the marker `tag` (it ends at `after`); the index where scanning goes on, or
        None to wait for more text."""
        if self.tag_format == TagFormat.AUTO:
            self._use(family_of(tag))
        verb, _, arg = action.partition(":")
        if verb in ("header", "role"):
            return self._harmony(verb, buf, after, final)
        if verb == "drop":
            return after
        if verb == "rest":
            while self._stack:
                self._close()
            self._rest = True
            return len(buf)
        if verb == "reclassify":
            self._reclassify(tag)
            return after
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
        elif verb in ("close_all", "end"):
            while self._stack:
                self._close()
            if arg:
                self._open(Channel(arg))
        self._line_blank = True
        return after

    def _harmony(self, verb: str, buf: str, after: int, final: bool) -> int | None:
        """A harmony channel header (`analysis`, `final`, or another shown with the answer)
        up to its `<|message|>`, or a role after `<|start|>` up to its next marker."""
        end = buf.find(HARMONY_MESSAGE if verb == "header" else "<|", after,
                       after + _HEADER_ROOM)
        whole = end >= 0
        if not whole:
            if not final and len(buf) - after < _HEADER_ROOM:
                return None
            end = min(len(buf), after + _HEADER_ROOM)  # no marker follows
        while self._stack:
            self._close()
        self._line_blank = True
        if verb == "role":
            return end
        header = " ".join(buf[after:end].replace(HARMONY_CONSTRAIN, " ").split())
        name = header.split(" ", 1)[0] if whole else ""
        self._open(Channel.THINKING if name == "analysis" else Channel.OUTPUT)
        if name not in ("analysis", "final"):  # a tool call, or a header cut off: shown
            self._content(f"[{header}] ")
        return end + len(HARMONY_MESSAGE) if whole else end

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


def parse_whole(text: str, tag_format: TagFormat, prefilled: bool = False,
                special: SpecialMarks | None = None) -> list[ChannelEvent]:
    """The events of a complete text, e.g. a stored answer's raw model text."""
    parser = ReflectionParser(tag_format, prefilled, special)
    return parser.feed(text) + parser.finish()


def _match_tag(buf: str, i: int, rules: dict[str, str], longest: int) -> tuple[str | None, bool]:
    """The marker at buf[i], or whether buf[i:] is a strict prefix of one (needs more input)."""
    rest = buf[i : i + longest]
    for tag in rules:
        if rest.startswith(tag):
            return tag, False
    return None, any(tag.startswith(rest) for tag in rules)
