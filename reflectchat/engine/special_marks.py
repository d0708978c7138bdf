"""Where an answer's special tokens are, so that a marker made of special tokens moves the parser
only when it arrived as those tokens: `<think>` written as the text `<`, `think`, `>` (a model
explaining tags in prose) stays text.

`starts` holds the offsets in the answer's text where a special token began (the engine adds
them as it yields text); `parts` says where the special tokens begin inside a marker's text
(none: a marker of plain text, matched as text). Markers asked about are remembered with their
parts, so a stored answer is read again the same way without the model's vocabulary."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class SpecialMarks:
    starts: set[int] = field(default_factory=set)
    known: dict[str, tuple[int, ...]] = field(default_factory=dict)  # marker -> its parts
    find: Callable[[str], tuple[int, ...]] | None = None  # the vocabulary's answer, when loaded

    def parts(self, marker: str) -> tuple[int, ...]:
        if marker not in self.known:
            self.known[marker] = self.find(marker) if self.find is not None else ()
        return self.known[marker]

    def arrived(self, marker: str, at: int) -> bool:
        """Whether `marker`, found at offset `at` of the answer, came as its special tokens."""
        return all(at + part in self.starts for part in self.parts(marker))

    def to_dict(self) -> dict[str, Any]:
        return {"at": sorted(self.starts), "parts": {m: list(p) for m, p in self.known.items()}}

    @classmethod
    def from_dict(cls, data: object) -> SpecialMarks | None:
        """Marks as stored; None for anything else (an older or damaged record)."""
        if not isinstance(data, dict):
            return None
        at, parts = data.get("at"), data.get("parts")
        if not isinstance(at, list) or not isinstance(parts, dict):
            return None
        if not all(_offset(a) for a in at) or not all(
                isinstance(m, str) and isinstance(p, list) and all(_offset(x) for x in p)
                for m, p in parts.items()):
            return None
        return cls(set(at), {m: tuple(p) for m, p in parts.items()})


def _offset(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def marker_parts(specials_in: Callable[[str], list[str]]) -> Callable[[str], tuple[int, ...]]:
    """Where the special tokens of a marker begin in its text, found in order (a tokenizer's
    offsets would count the space SentencePiece puts before text)."""
    def parts(marker: str) -> tuple[int, ...]:
        found, at = [], 0
        for special in specials_in(marker):
            where = marker.find(special, at)
            if where < 0:
                return ()
            found.append(where)
            at = where + len(special)
        return tuple(found)

    return parts
