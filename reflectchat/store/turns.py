"""Turns to stored messages and back: a turn is a user message and the answer after it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reflectchat.chat.comparison import CHOICES, SIDES, Comparison, Setup
from reflectchat.chat.conversation import Conversation, Turn
from reflectchat.engine.base import (
    EFFORTS,
    SPECULATION,
    FinishReason,
    GenerationStats,
    TagFormat,
)
from reflectchat.engine.special_marks import SpecialMarks
from reflectchat.reflection.answer import Answer
from reflectchat.reflection.facts import ChannelFacts
from reflectchat.store.records import SessionInfo, StoredMessage, plain_number


def user_message(turn: Turn) -> StoredMessage:
    return StoredMessage("user", turn.prompt)


def answer_message(turn: Turn, stats: GenerationStats | None = None) -> StoredMessage:
    """The turn's answer as it stands; without `stats` it is still streaming (interrupted,
    should the process die before it finishes)."""
    return AnswerSnapshot.of(turn).message(stats)


@dataclass(frozen=True)
class AnswerSnapshot:
    """A streaming answer as it stood between two events: references only, so the streaming
    thread takes it in microseconds, and another thread turns it into a stored message."""

    raw: str
    thinking: str
    reflections: tuple[str, ...]
    output: str
    tag_format: str
    prefilled: bool
    facts: ChannelFacts
    special: dict[str, Any] | None  # where its special tokens are (SpecialMarks), copied
    marks: tuple[int, ...] = ()  # where in the thinking each reflection came
    compare: dict[str, Any] | None = None  # one side of a comparison: its side and setup

    @classmethod
    def of(cls, turn: Turn) -> AnswerSnapshot:
        answer = turn.answer
        return cls(answer.raw, answer.thinking, tuple(answer.reflections), answer.output,
                   turn.tag_format.value, turn.prefilled, answer.facts.snapshot(),
                   answer.special.to_dict() if answer.special else None, tuple(answer.marks),
                   turn.comparison.stored(turn) if turn.comparison else None)

    def message(self, stats: GenerationStats | None = None) -> StoredMessage:
        """As it is stored: with the answer's `stats` once it ended; without, still streaming
        (interrupted, should the process die)."""
        finish = stats.finish_reason.value if stats else FinishReason.INTERRUPTED.value
        data: dict[str, Any] = stats.to_dict() if stats else {}
        data.update(self.facts.to_dict())
        data["reasoning_tokens"] = self.facts.reasoning_tokens
        if self.special is not None:
            data["special"] = self.special
        if self.compare is not None:
            data["compare"] = self.compare
        thinking = self.thinking.strip()
        if len(self.marks) == len(self.reflections):  # the marks in the thinking as stored
            cut = len(self.thinking) - len(self.thinking.lstrip())
            data["marks"] = [min(max(m - cut, 0), len(thinking)) for m in self.marks]
        return StoredMessage(
            "assistant", self.raw, thinking, [r.strip() for r in self.reflections],
            self.output.strip(), self.tag_format, self.prefilled, finish, data,
        )


_NUMBERS = {"prompt_tokens": int, "completion_tokens": int, "prompt_evaluated": int,
            "time_to_first_token_s": float,
            "tokens_per_second": float, "total_s": float, "drafted": int, "accepted": int,
            "speedup": float}


def _number(value: object, kind: type) -> int | float | None:
    """A stored number of `kind`, or None for anything else (a damaged or hostile record)."""
    if not plain_number(value) or (kind is int and value != int(value)):  # type: ignore[call-overload]
        return None
    return kind(value)


def _stats(message: StoredMessage) -> GenerationStats:
    """The stats of a stored answer; a value of the wrong kind is left out."""
    data = message.stats or {}
    stats = GenerationStats()
    for name, kind in _NUMBERS.items():
        value = _number(data.get(name), kind)
        if value is not None:
            setattr(stats, name, value)
    for name in ("error", "reasoning_note"):
        if isinstance(data.get(name), str):
            setattr(stats, name, data[name])
    if data.get("speculation") in SPECULATION:
        stats.speculation = data["speculation"]
    if data.get("effort") in EFFORTS:
        stats.effort = data["effort"]
    stats.thinking_budget = _number(data.get("thinking_budget"), int)  # type: ignore[assignment]
    try:
        stats.finish_reason = FinishReason(message.finish_reason or "interrupted")
    except ValueError:
        stats.finish_reason = FinishReason.INTERRUPTED
    return stats


def _marks(message: StoredMessage) -> list[int] | None:
    """Where in the stored thinking each reflection came, as stored with it: the panes of a
    reopened answer are laid out without reading its raw text again. None (read it again)
    for a session stored before marks were kept, or marks that do not fit the texts (a
    damaged or hostile record): one per reflection, in order, within the thinking."""
    marks = (message.stats or {}).get("marks")
    if not isinstance(marks, list) or len(marks) != len(message.reflections) or \
            not all(type(m) is int for m in marks):
        return None
    bound = len(message.thinking or "")
    if any(not 0 <= a <= b <= bound for a, b in zip([0, *marks], [*marks, bound], strict=True)):
        return None
    return marks


def _tag_format(value: str | None) -> TagFormat:
    try:
        return TagFormat.parse(value or TagFormat.AUTO.value)
    except ValueError:
        return TagFormat.AUTO


def _answer_of(turn: Turn, message: StoredMessage) -> None:
    turn.tag_format = _tag_format(message.tag_format)
    turn.prefilled = message.prefilled
    turn.answer = Answer(message.thinking, list(message.reflections), message.output,
                         message.raw, ChannelFacts.from_dict(message.stats),
                         SpecialMarks.from_dict((message.stats or {}).get("special")),
                         _marks(message))
    turn.stats = _stats(message)


def compared_side(stats: object) -> tuple[str, Setup, str | None] | None:
    """A stored answer's side of a comparison, from its stats: its side, its setup, and on
    side a the user's mark; None for an ordinary answer, or a record that cannot be read as
    one (it is then read as an ordinary answer)."""
    kept = stats.get("compare") if isinstance(stats, dict) else None
    if not isinstance(kept, dict) or kept.get("side") not in SIDES:
        return None
    setup = Setup.from_dict(kept.get("setup"))
    if setup is None:
        return None
    choice = kept.get("choice") if kept.get("choice") in CHOICES else None
    return kept["side"], setup, choice


def conversation_from(info: SessionInfo, messages: list[StoredMessage]) -> Conversation:
    """The conversation a stored session holds. A prompt whose answer row is missing (killed
    between the two) becomes a turn with an empty, interrupted answer. A prompt answered by
    two setups side by side (a comparison: its first answer is side a, the next side b) goes
    on with the side the user marked better, the other kept with it."""
    conversation = Conversation(info.meta.system_prompt, info.meta.sampling)
    turn: Turn | None = None
    first: tuple[Turn, tuple[str, Setup, str | None], int] | None = None  # side a, waiting
    for message in messages:
        if message.role == "user":
            turn = Turn(message.raw, TagFormat.AUTO,
                        stats=GenerationStats(finish_reason=FinishReason.INTERRUPTED))
            conversation.turns.append(turn)
            first = None
            continue
        side = compared_side(message.stats)
        if turn is not None:
            _answer_of(turn, message)
            if side is not None and side[0] == "a":
                first = (turn, side, message.seq)
            turn = None
        elif first is not None and side is not None and side[0] == "b":
            (a, (_, setup_a, choice), seq), b = first, Turn(conversation.turns[-1].prompt,
                                                            TagFormat.AUTO)
            _answer_of(b, message)
            comparison = Comparison((setup_a, side[1]), [a, b], choice,
                                    (info.id, seq))
            a.comparison = b.comparison = comparison
            conversation.turns[-1] = comparison.chosen
            first = None
    return conversation
