"""What each reasoning format's markers (engine/families.py) do to the reflection parser.

- reflection: `<thinking>` with nested `<reflection>` blocks, then `<output>`.
- think: `<think>…</think>` then an untagged answer (R1 and its distills, QwQ, Qwen3, GLM).
- magistral: `[THINK]…[/THINK]`; seed: `<seed:think>…</seed:think>` (Seed-OSS; its
  `<seed:cot_budget_reflect>` notes stay inside the thinking as text); thought:
  `<thought>…</thought>` (EXAONE Deep); tags: the pair a user named with --think-tags, or a
  template showed, with the answer wrapper around it (Kimi K3's `<|open|>response<|sep|>`).
- granite: `<think>…</think><response>…</response>`, or the plain-text headings "Here is my
  thought process:" and "Here is my response:" that Granite 3.2's template asks for.
- harmony (gpt-oss): `<|channel|>analysis<|message|>…<|end|>` is thinking, the `final` channel
  is the answer; any other channel (`commentary`, a tool call) is shown in the answer with its
  header; `<|start|>` and its role, `<|end|>`, `<|return|>`, `<|call|>` and `<|constrain|>` are
  markup and never shown.

Actions, per innermost explicit section (None: top level): "open:X" opens a section,
"close" closes one, "close_all:X" closes every section and opens X, "close_thinking" closes a
reflection and the thinking around it, "reclassify" says the prompt opened the thinking (the
text so far was thinking), "header" reads a harmony channel header up to `<|message|>`, "role"
drops a harmony role up to its next marker, "end" closes every section, "drop" shows nothing,
"rest" closes every section and shows nothing more (the markup after a wrapped answer).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from reflectchat.engine.base import TagFormat
from reflectchat.engine.families import (
    GRANITE_RESPONSE,
    GRANITE_THINKING,
    HARMONY_CHANNEL,
    HARMONY_ENDS,
    HARMONY_MESSAGE,
    HARMONY_START,
    THINK_TAGS,
)
from reflectchat.reflection.events import Channel

Rules = dict[Channel | None, dict[str, str]]

_HARMONY = {HARMONY_CHANNEL: "header", HARMONY_START: "role", HARMONY_MESSAGE: "drop",
            **dict.fromkeys(HARMONY_ENDS, "end")}
_REFLECTION: Rules = {
    None: {"<thinking>": "open:thinking", "<reflection>": "open:reflection",
           "<output>": "open:output"},
    Channel.THINKING: {"<reflection>": "open:reflection", "</thinking>": "close",
                       "<output>": "close_all:output"},
    Channel.REFLECTION: {"</reflection>": "close", "</thinking>": "close_thinking",
                         "<output>": "close_all:output"},
    Channel.OUTPUT: {"</output>": "close"},
}


@dataclass(frozen=True)
class Dialect:
    """How one format's markers move the parser."""

    rules: Rules
    unopened: dict[str, str]  # closing markers that, before any section, say the prompt opened
    opener: str | None  # the marker that opens thinking (what a prefilling template writes)

    def at(self, where: Channel | None) -> dict[str, str]:
        return self.rules.get(where, {})

    def starts(self) -> re.Pattern[str]:
        """Where the parser must look closer: a marker's first character, or a backtick."""
        firsts = {m[0] for rules in self.rules.values() for m in rules} | \
            {m[0] for m in self.unopened} | {"`"}
        return re.compile("[" + "".join(re.escape(c) for c in sorted(firsts)) + "]")

    def longest(self) -> int:
        markers = [m for rules in self.rules.values() for m in rules] + list(self.unopened)
        return max(map(len, markers), default=1)


def _pair(opener: str, closer: str) -> Dialect:
    """`opener` "": no opener; all before the closer is thinking (the closer reclassifies)."""
    return Dialect({None: {opener: "open:thinking"} if opener else {},
                    Channel.THINKING: {closer: "close"}}, {closer: "reclassify"}, opener or None)


def _wrapped(opener: str, closer: str, answer_opener: str, answer_end: str) -> Dialect:
    """A thinking pair with an answer wrapper, as a template showed them (engine/
    reasoning_found.py): the answer's opener closes any thinking left open, and its end hides
    all that follows (the wrapper's and the message's closing markup)."""
    top: dict[str, str] = {opener: "open:thinking"} if opener else {}
    thinking: dict[str, str] = {closer: "close"}
    output: dict[str, str] = {}
    if answer_opener:
        top[answer_opener] = "open:output"
        thinking[answer_opener] = "close_all:output"
    if answer_end:
        top[answer_end] = output[answer_end] = "rest"
    return Dialect({None: top, Channel.THINKING: thinking, Channel.OUTPUT: output},
                   {closer: "reclassify"}, opener or None)


def _granite() -> Dialect:
    return Dialect({
        None: {"<think>": "open:thinking", "<response>": "open:output",
               GRANITE_THINKING: "open:thinking", GRANITE_RESPONSE: "open:output"},
        Channel.THINKING: {"</think>": "close", "<response>": "close_all:output",
                           GRANITE_RESPONSE: "close_all:output"},
        Channel.OUTPUT: {"</response>": "close"},
    }, {"</think>": "reclassify"}, "<think>")


_FAMILIES = ("reflection", "think", "magistral", "seed", "thought", "harmony")


@cache
def dialect(tag_format: TagFormat) -> Dialect:
    """The dialect of a format ("auto": every family's top-level markers at once)."""
    name = tag_format.name
    if name == "plain":
        return Dialect({}, {}, None)
    if name == "reflection":
        return Dialect(_REFLECTION, {"</thinking>": "reclassify"}, "<thinking>")
    if name == "harmony":
        return Dialect(dict.fromkeys([None, *Channel], _HARMONY), {}, None)
    if name == "granite":
        return _granite()
    if name == "auto":
        top: dict[str, str] = {}
        unopened: dict[str, str] = {}
        for family in _FAMILIES:
            each = dialect(TagFormat(family))
            top |= each.at(None)
            unopened |= each.unopened
        return Dialect({None: top}, unopened, None)
    if tag_format.tags is not None and tag_format.answer is not None:
        return _wrapped(*tag_format.tags, *tag_format.answer)
    if tag_format.tags is not None:
        return _pair(*tag_format.tags)
    return _pair(*THINK_TAGS[name])


def family_of(marker: str) -> TagFormat:
    """The family whose top-level or unopened-closing marker this is (for "auto")."""
    for family in _FAMILIES:
        each = dialect(TagFormat(family))
        if marker in each.at(None) or marker in each.unopened:
            return TagFormat(family)
    raise ValueError(f"no family writes {marker!r}")
