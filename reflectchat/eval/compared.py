"""What differs between two answers to one prompt, and what the user's marks say over many.

Two answers agree on their final answer when both give the same one: a marked answer (the last
`\\boxed{}`, else the number after "####", as `eval` reads GSM8K answers) or, in a short output
(a line or two), the number it ends on; compared as numbers where both are. Outputs with no
such answer (an essay ending on a year) agree when they are the same text up to case, spacing
and a final full stop. The output diff is word by word (difflib), for a glance, not a review.

The marks of one pair of setups are a share: of the comparisons marked (ties left out), how
many went to each side, with Wilson's interval (`intervals.py`), as `eval` gives accuracies."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from reflectchat.eval.checking import MARKED, NUMBER, final_number, last_boxed
from reflectchat.eval.intervals import Interval, wilson

_WORDS = re.compile(r"\S+\s*")


def _as_number(text: str | None) -> Decimal | None:
    if text is None:
        return None
    try:
        value = Decimal(text.replace(",", "").replace("$", "").replace(" ", ""))
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def _plain(text: str) -> str:
    return " ".join(text.lower().split()).rstrip(".").strip()


SHORT = 160  # characters: an output this short is an answer, its last number the answer's


def final_answer(text: str) -> str | None:
    """The answer an output gives (see the module's note), or None."""
    boxed = last_boxed(text)
    if boxed is not None or MARKED.search(text) or len(text.strip()) <= SHORT:
        return final_number(text) if boxed is None or NUMBER.search(boxed) else boxed.strip()
    return None


def same_final(a: str, b: str) -> bool:
    """Whether two outputs give the same final answer (see the module's note)."""
    x, y = final_answer(a), final_answer(b)
    if x is None and y is None:
        return _plain(a) == _plain(b)
    if x is None or y is None:
        return False
    m, n = _as_number(x), _as_number(y)
    return m == n if m is not None and n is not None else _plain(x) == _plain(y)


def output_diff(a: str, b: str) -> list[tuple[str, str]]:
    """The outputs word by word: ("=", words both have), ("-", only a's), ("+", only b's)."""
    x, y = _WORDS.findall(a), _WORDS.findall(b)
    parts: list[tuple[str, str]] = []
    matcher = difflib.SequenceMatcher(None, [w.strip() for w in x], [w.strip() for w in y],
                                      autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            parts.append(("=", "".join(y[j1:j2])))
            continue
        if i2 > i1:
            parts.append(("-", "".join(x[i1:i2])))
        if j2 > j1:
            parts.append(("+", "".join(y[j1:j2])))
    return parts


@dataclass(frozen=True)
class PairMarks:
    """The marks given between two setups (named by their labels, in a fixed order)."""

    first: str
    second: str
    first_wins: int
    second_wins: int
    ties: int

    @property
    def decided(self) -> int:
        return self.first_wins + self.second_wins

    def share(self) -> Interval | None:
        """The first setup's share of the decided marks, with its 95% interval."""
        return wilson(self.first_wins, self.decided)

    def sentence(self) -> str:
        """"Q8_0 preferred 14 of 20 (70%, 95% interval [48%, 85%]) over Q4_K_M (6); 2 ties"."""
        ahead, wins, other, rest = (self.first, self.first_wins, self.second,
                                    self.second_wins) if self.first_wins >= self.second_wins \
            else (self.second, self.second_wins, self.first, self.first_wins)
        ties = f"; {self.ties} tie{'s' * (self.ties != 1)}" if self.ties else ""
        if not self.decided:
            return f"{self.first} vs {self.second}: {self.ties} tie{'s' * (self.ties != 1)}, " \
                "no side preferred"
        share = wilson(wins, self.decided)
        assert share is not None
        if wins == rest:
            return (f"{self.first} and {self.second} preferred equally, {wins} of "
                    f"{self.decided} each (95% interval [{share.low:.0%}, {share.high:.0%}])"
                    f"{ties}")
        return (f"{ahead} preferred {wins} of {self.decided} ({share.value:.0%}, 95% interval "
                f"[{share.low:.0%}, {share.high:.0%}]) over {other} ({rest}){ties}")


def pair_marks(marks: Iterable[tuple[str, str, str]]) -> list[PairMarks]:
    """Per pair of setups, from (label a, label b, choice) of each marked comparison (a side
    asked first or second counts the same), the pairs with most marks first."""
    tally: dict[tuple[str, str], list[int]] = {}
    for a, b, choice in marks:
        if a == b:  # both sides named alike: no preference between setups to count
            continue
        key = (min(a, b), max(a, b))
        counts = tally.setdefault(key, [0, 0, 0])
        if choice == "tie":
            counts[2] += 1
        elif choice in ("a", "b"):
            winner = a if choice == "a" else b
            counts[0 if winner == key[0] else 1] += 1
    found = [PairMarks(x, y, *counts) for (x, y), counts in tally.items()]
    return sorted(found, key=lambda p: (-(p.decided + p.ties), p.first, p.second))
