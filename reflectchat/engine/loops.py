"""Noticing a model that repeats itself: the same span of tokens (or characters, from a
server) several times in a row, as greedy or low-temperature decoding falls into (Holtzman et
al., "The Curious Case of Neural Text Degeneration", arXiv 1904.09751; QwQ's and the R1
distills' model cards warn of endless repetition at low temperature).

For every period p up to a bound, `_run[p]` counts how many items in a row have equalled the
item p places before them; the last `_run[p] + p` items are then one span of p items repeated.
What a repeated span is decides how long it may go on (`Repeats`):
- a span with letters (words, sentences: what a model going round repeats) is a loop at
  `times` copies covering `least` items. Tables, code and numbered lists differ somewhere in
  every copy, a number or a name, and never build a run; a chorus sung three times does not
  make four copies.
- a span with no letters at all is layout: a matrix of zeros, a rule of `=`, empty table rows,
  a list of zeros, ASCII art. It may repeat until it covers `layout_least` items (a 300-row
  table, a 32x32 matrix in LaTeX fit), and only a model that never stops is cut.
- a span the user wrote in the prompt, when the prompt names a number ("write 'I will not
  talk in class.' 100 times"), may repeat that many times and one more; past it, it is a loop.
  Without a number in the prompt, quoting the prompt gains nothing: a small model going round
  on the user's own question is the commonest loop of all.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


@dataclass(frozen=True)
class LoopRule:
    longest_span: int  # the longest repeated span looked for, in items
    times: int  # copies of a span with letters in a row
    least: int  # items the repeated stretch covers, at least
    layout_least: int  # items a span without letters may cover before it is a loop


TOKENS = LoopRule(longest_span=256, times=4, least=160, layout_least=8192)  # token ids
CHARACTERS = LoopRule(longest_span=1024, times=4, least=640, layout_least=32768)  # a server's
_NUMBER = re.compile(r"\d{1,5}")
_PIECES = re.compile(r"(?<=[.!?])\s+|\n")
_QUOTED_LEAST = 8  # characters of a piece of the span that must be the prompt's
_KINDS_KEPT = 4096  # spans whose kind is remembered (each rotation of a repeating span is one)


class Repeats:
    """What a repeated span's text is, and so how many copies of it are a loop."""

    def __init__(self, rule: LoopRule, asked: str = "") -> None:
        """`asked`: the user's prompt, where a span it quotes and a count it names are."""
        self._rule = rule
        self._asked = asked
        numbers = [int(n) for n in _NUMBER.findall(asked)]
        self._allowed = max(numbers, default=0)

    def kind(self, span: str) -> str:
        """"layout" (no letters), "quoted" (the prompt's words, with a count) or "words"."""
        if not any(c.isalpha() for c in span):
            return "layout"
        return "quoted" if self._allowed and self._quoted(span) else "words"

    def looping(self, kind: str, period: int, covered: int) -> bool:
        """Whether `covered` items, a `period`-item span of this kind repeated, loop."""
        if kind == "layout":
            return covered >= self._rule.layout_least
        if kind == "quoted":
            return covered / period > self._allowed + 1
        return True

    def _quoted(self, span: str) -> bool:
        """The span is the prompt's words (one line or sentence of it, wherever the copy was
        cut: the span doubled holds the whole piece)."""
        pieces = [p.strip() for p in _PIECES.split(span + span)]
        longest = max(pieces, key=len)
        letters = sum(c.isalpha() for c in span)
        return len(longest) >= _QUOTED_LEAST and longest in self._asked \
            and sum(c.isalpha() for c in longest) * 2 >= letters


class LoopWatch:
    """Feed items one at a time; `feed` says True once the tail is a clear loop. `text_of`
    gives the text of a run of items (the tokens' text; characters as they are)."""

    def __init__(self, rule: LoopRule = TOKENS,
                 text_of: Callable[[Sequence[Hashable]], str] | None = None,
                 asked: str = "") -> None:
        self._rule = rule
        self._text_of = text_of or (lambda items: "".join(map(str, items)))
        self._repeats = Repeats(rule, asked)
        self._kinds: dict[tuple[Hashable, ...], str] = {}  # a repeated span's kind, by items
        self._recent: list[Hashable] = []
        self._run = [0] * (rule.longest_span + 1)

    def feed(self, item: Hashable) -> bool:
        run, rule = self._run, self._rule
        recent = self._recent
        recent.append(item)
        if len(recent) > 4 * rule.longest_span:  # keep the last longest_span + 1, now and then
            del recent[:len(recent) - rule.longest_span - 1]
        seen = min(len(recent) - 1, rule.longest_span)  # the periods that can be compared
        shortest = 0  # the shortest period repeated enough to ask what it is
        for p in range(1, seen + 1):
            if recent[-1 - p] == item:
                run[p] += 1
                if not shortest and run[p] >= (rule.times - 1) * p and run[p] + p >= rule.least:
                    shortest = p
            else:
                run[p] = 0
        if not shortest:
            return False
        span = tuple(recent[-shortest:])  # one rotation of the span: the kind is the same
        kind = self._kinds.get(span)
        if kind is None:
            if len(self._kinds) >= _KINDS_KEPT:
                self._kinds.clear()
            kind = self._kinds[span] = self._repeats.kind(self._text_of(span))
        return self._repeats.looping(kind, shortest, run[shortest] + shortest)


class TextLoopWatch:
    """`LoopWatch` over a server's text, a character at a time, with the same verdicts, worked
    as arrays: 1,024 periods checked per character one by one in Python took 16.6 s of the
    19.2 s a 40,000-token stream took to read. Each piece of text (in steps of `STEP`
    characters) is compared with the characters 1..longest_span before it at once, and the
    runs of equal characters follow from where each period last differed."""

    STEP = 256  # characters worked at once (a step's arrays: STEP x longest_span)

    def __init__(self, rule: LoopRule = CHARACTERS, asked: str = "") -> None:
        self._rule = rule
        self._repeats = Repeats(rule, asked)
        self._periods = np.arange(1, rule.longest_span + 1)
        self._run = np.zeros(rule.longest_span, dtype=np.int64)  # for periods 1..span
        self._before = np.empty(0, dtype=np.int64)  # the last longest_span characters' codes

    def feed_text(self, text: str) -> bool:
        """Each character of `text`; True when the loop is clear at any of them."""
        looping = False
        for at in range(0, len(text), self.STEP):
            looping = self._feed(text[at:at + self.STEP]) or looping
        return looping

    def _feed(self, text: str) -> bool:
        span, rule = self._rule.longest_span, self._rule
        codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")
        new = codes.astype(np.int64)
        if not len(new):
            return False
        # -1 before the start: no character equals it, as `LoopWatch` compares nothing there
        padded = np.concatenate([np.full(span - len(self._before), -1), self._before, new])
        # row i: the span characters before new[i], nearest first (period 1, 2, ...)
        before = sliding_window_view(padded, span)[:len(new), ::-1]
        same = before == new[:, None]
        rows = np.arange(len(new))[:, None]
        differed = np.maximum.accumulate(np.where(same, -1, rows), axis=0)
        run = np.where(differed >= 0, rows - differed, self._run + rows + 1)
        self._run = run[-1].copy()
        self._before = padded[-span:].copy()
        repeated = (run >= (rule.times - 1) * self._periods) & \
            (run + self._periods >= rule.least)
        for row in np.flatnonzero(repeated.any(axis=1)):
            period = int(np.argmax(repeated[row])) + 1  # the shortest, as `LoopWatch` asks
            end = span + int(row) + 1  # just past new[row] in `padded`
            copy = padded[end - period:end]
            if self._repeats.looping(self._repeats.kind("".join(map(chr, copy))), period,
                                     int(run[row, period - 1]) + period):
                return True
        return False
