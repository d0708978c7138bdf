"""What each reflection corrected, at a glance: the sentence of thinking it followed (the claim
it doubts) and the first sentence after it (the corrected claim).

A heuristic: sentences end at . ! ? followed by a space or a line break, or at a blank line.
When thinking does not go on after a reflection, the corrected claim is the output's first
sentence; when nothing comes before it, the claim is empty.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from reflectchat.engine.base import TagFormat
from reflectchat.reflection.events import Channel, ChannelEvent, EventKind
from reflectchat.reflection.parser import parse_whole

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n\s*\n|\n(?=\s*(?:[-*]|\d+[.)])\s)")
_LIST_NUMBER = re.compile(r"(?:^|\n)\s*\d+[.)]$")  # "1." opens a list item, it ends nothing
MAX_SENTENCE = 300  # characters kept of one sentence (a model may write pages without a stop)


@dataclass(frozen=True)
class Correction:
    n: int  # the reflection's number, from 1
    reflection: str
    before: str  # the thinking sentence the reflection followed
    after: str  # the first sentence after it: the corrected claim


def sentences(text: str) -> list[str]:
    found, start = [], 0
    for end in _SENTENCE_END.finditer(text):
        if _LIST_NUMBER.search(text[start:end.start()]):
            continue
        found.append(text[start:end.start()])
        start = end.end()
    found.append(text[start:])
    return [s.strip() for s in found if s.strip()]


def _clip(sentence: str) -> str:
    sentence = " ".join(sentence.split())
    return sentence if len(sentence) <= MAX_SENTENCE else sentence[:MAX_SENTENCE - 1] + "…"


def corrections_from_events(events: list[ChannelEvent]) -> list[Correction]:
    thinking = output = ""
    marks: list[int] = []  # where in the thinking each reflection began
    texts: list[str] = []
    channel_of_output = Channel.OUTPUT
    for event in events:
        if event.kind is EventKind.RECLASSIFY:  # the output so far was thinking
            thinking, output = thinking + output, ""
        elif event.channel is Channel.REFLECTION:
            if event.kind is EventKind.OPEN:
                marks.append(len(thinking))
                texts.append("")
                thinking += "\n\n"  # the reflection ends the sentence before it
            elif event.kind is EventKind.TEXT and texts:
                texts[-1] += event.text
        elif event.kind is EventKind.TEXT:
            if event.channel is channel_of_output:
                output += event.text
            else:
                thinking += event.text
        elif event.kind is EventKind.OPEN and event.channel is Channel.THINKING and thinking:
            thinking += "\n\n"
    found = []
    for n, (mark, text) in enumerate(zip(marks, texts, strict=True), 1):
        before = sentences(thinking[:mark])
        after = sentences(thinking[mark:]) or sentences(output)
        found.append(Correction(n, text.strip(), _clip(before[-1]) if before else "",
                                _clip(after[0]) if after else ""))
    return found


def corrections(raw: str, tag_format: TagFormat, prefilled: bool = False) -> list[Correction]:
    """Each reflection of a whole answer, with the claim before it and the one after."""
    return corrections_from_events(parse_whole(raw, tag_format, prefilled))
