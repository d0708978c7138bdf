"""A thinking budget: when a model has thought for N tokens, the engine writes the family's
end of thinking itself and the model goes on with its answer. This is budget forcing as the s1
paper does it (Muennighoff et al., "s1: Simple test-time scaling", arXiv 2501.19393) and as
llama-server's `--reasoning-budget` does it.

`ThinkingWatch` follows the answer's text as it streams: thinking begins at the family's opener
(or at once, when the prompt opened it) and ends at its closer; it counts the tokens between.
"""

from __future__ import annotations

from reflectchat.engine.base import TagFormat
from reflectchat.engine.families import (
    HARMONY_CHANNEL,
    HARMONY_MESSAGE,
    THINK_TAGS,
    thinking_pair,
)


def budget_closer(tag_format: TagFormat, opener: str | None = None) -> str:
    """What the engine writes to end thinking: the closer of `opener`'s pair (under auto, the
    family whose opener the answer wrote), and for gpt-oss the header of its answer channel
    too."""
    if tag_format.name == "harmony":
        return f"<|end|><|start|>assistant{HARMONY_CHANNEL}final{HARMONY_MESSAGE}"
    return dict(_pairs(tag_format)).get(opener or "", thinking_pair(tag_format.name,
                                                                    tag_format.tags)[1])


def _pairs(tag_format: TagFormat) -> list[tuple[str, str]]:
    """The (opener, closer) pairs to watch for: the family's, or under auto every family's
    (the first tag of the answer decides, as the parser does)."""
    if tag_format.name == "auto":
        return list(dict.fromkeys(THINK_TAGS.values()))
    return [thinking_pair(tag_format.name, tag_format.tags)]


class ThinkingWatch:
    """Feed each token's text; `inside` says whether the model is thinking now, `spent` how
    many tokens it has thought in all, `closer` what ends the thinking it is in."""

    def __init__(self, tag_format: TagFormat, prefilled: str | None) -> None:
        """`prefilled`: the opener the prompt ended with (the thinking is open at once)."""
        self._format = tag_format
        self._pairs = _pairs(tag_format)
        if prefilled is None and tag_format.tags and not tag_format.tags[0]:
            prefilled = ""  # no opener: the answer starts thinking
        self._tail = ""
        self.inside = prefilled is not None
        self._opener = prefilled
        self.spent = 0
        self.rest = ""

    @property
    def closer(self) -> str:
        """What the engine writes to end the thinking now."""
        return budget_closer(self._format, self._opener)

    def feed(self, text: str) -> None:
        """One token's text; `rest` is then what followed a marker it completed, if any."""
        tail = self._tail + text
        self.rest = ""
        if self.inside:
            self.spent += 1
            closer = dict(self._pairs).get(self._opener or "", self._pairs[0][1])
            if closer in tail:
                self.inside = False
                tail = self.rest = tail[tail.index(closer) + len(closer):]
        else:
            found = [(tail.index(o), o) for o, _ in self._pairs if o and o in tail]
            if found:
                at, self._opener = min(found)
                self.inside = True
                tail = self.rest = tail[at + len(self._opener):]
        keep = max(len(m) for pair in self._pairs for m in pair)
        self._tail = tail[-keep:]

    def closed(self) -> None:
        """The engine ended the thinking itself."""
        self.inside = False
        self._tail = ""
