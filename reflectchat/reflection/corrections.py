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
from reflectchat.engine.special_marks import SpecialMarks
from reflectchat.reflection.answer import Answer

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


def corrections_of(answer: Answer) -> list[Correction]:
    """Each reflection of `answer`, with the claim before its mark and the one after."""
    found = []
    for n, (mark, text) in enumerate(zip(answer.marks, answer.reflections, strict=True), 1):
        before = sentences(answer.thinking[:mark])
        after = sentences(answer.thinking[mark:]) or sentences(answer.output)
        found.append(Correction(n, text.strip(), _clip(before[-1]) if before else "",
                                _clip(after[0]) if after else ""))
    return found


def corrections(raw: str, tag_format: TagFormat, prefilled: bool = False,
                special: SpecialMarks | None = None) -> list[Correction]:
    """Each reflection of a whole stored answer, read from its raw model text."""
    return corrections_of(Answer.from_raw(raw, tag_format, prefilled, special))
