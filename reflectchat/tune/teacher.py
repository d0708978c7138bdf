"""The teacher's reflection, as in Selective Reflection-Tuning (Li et al., arXiv 2402.10110): on the
instruction (complexity of the topic, level of detail, knowledge required, ambiguity, logical
reasoning involved; then a new instruction and its answer) and on the response (helpfulness,
relevance, accuracy, level of detail; then a better answer). The teacher is the loaded model or
a server; its answer streams into the same thinking/reflection/output view as a chat, and the
rewrites are read from its output between the markers below."""

from __future__ import annotations

import re
from dataclasses import dataclass

_PAIR = ("[Instruction]\n{instruction}\n\n[The Start of Answer]\n{answer}\n"
         "[The End of Answer]\n\n")

INSTRUCTION_REFLECTION = (
    "You are a helpful and precise assistant for checking the quality of an instruction and "
    "its answer.\n\n" + _PAIR +
    "We would like you to judge the quality of the instruction on these aspects: the "
    "complexity of the topic, the level of detail required for a response, the knowledge "
    "required for a response, the ambiguity of the instruction, and the logical reasoning or "
    "problem-solving involved. Explain your judgement on each aspect in turn.\n\n"
    "Then write a new, better instruction that improves on those aspects, and an answer to "
    "it. Write them exactly in this format, each ending with [End]:\n"
    "[New Instruction] your new instruction [End]\n"
    "[New Answer] your answer to the new instruction [End]")

RESPONSE_REFLECTION = (
    "You are a helpful and precise assistant for checking the quality of an answer.\n\n"
    + _PAIR +
    "We would like you to judge the answer on these aspects: its helpfulness, its relevance "
    "to the instruction, its accuracy, and its level of detail. Explain your judgement on "
    "each aspect in turn.\n\n"
    "Then write a better answer to the same instruction. Write it exactly in this format, "
    "ending with [End]:\n"
    "[Better Answer] your better answer [End]")


class TeacherFormatError(ValueError):
    """The teacher's answer lacks a rewrite in the asked format; the message says which."""


@dataclass(frozen=True)
class InstructionRewrite:
    instruction: str
    answer: str


# the placeholders of the asked format: a teacher that echoes the prompt repeats them
_PLACEHOLDERS = {"New Instruction": "your new instruction",
                 "New Answer": "your answer to the new instruction",
                 "Better Answer": "your better answer"}


def _marked(text: str, marker: str, pair: tuple[str, str]) -> str:
    """The text after the last `[marker]` up to `[End]` (or the end of the answer). The
    format's own placeholder, and the pair's instruction or answer given back unchanged, are no
    rewrite: a teacher that echoed the prompt."""
    found = list(re.finditer(rf"\[{re.escape(marker)}\]\s*(.*?)\s*(?:\[End\]|(?=\[New )|$)",
                             text, re.DOTALL | re.IGNORECASE))
    body = found[-1][1].strip() if found else ""
    if not body:
        raise TeacherFormatError(f"the teacher's answer has no [{marker}] ... [End] part")
    if _same(body, _PLACEHOLDERS[marker]) or any(_same(body, given) for given in pair):
        raise TeacherFormatError(f"the teacher's [{marker}] only repeats the prompt "
                                 f"({_short(body)!r}): no rewrite")
    return body


def _same(a: str, b: str) -> bool:
    return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()


def _short(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= 40 else flat[:39] + "…"


def parse_instruction_reflection(text: str, instruction: str = "",
                                 answer: str = "") -> InstructionRewrite:
    pair = (instruction, answer)
    return InstructionRewrite(_marked(text, "New Instruction", pair),
                              _marked(text, "New Answer", pair))


def parse_response_reflection(text: str, instruction: str = "", answer: str = "") -> str:
    return _marked(text, "Better Answer", (instruction, answer))
