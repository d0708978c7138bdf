"""A thinking budget: when a model has thought for N tokens, the engine writes the family's
end of thinking itself and the model goes on with its answer. This is budget forcing as the s1
paper does it (Muennighoff et al., "s1: Simple test-time scaling", arXiv 2501.19393) and as
llama-server's `--reasoning-budget` does it.

`ThinkingWatch` follows the answer's text as it streams: thinking begins at the family's opener
(or at once, when the prompt opened it) and ends at its closer; it counts the tokens between.
"""

from __future__ import annotations

from reflectchat.engine.base import TagFormat
from reflectchat.engine.families import HARMONY_CHANNEL, HARMONY_MESSAGE, thinking_pair


def budget_closer(tag_format: TagFormat) -> str:
    """What the engine writes to end thinking: the closer, and for gpt-oss the header of its
    answer channel too."""
    if tag_format.name == "harmony":
        return f"<|end|><|start|>assistant{HARMONY_CHANNEL}final{HARMONY_MESSAGE}"
    return thinking_pair(tag_format.name, tag_format.tags)[1]


class ThinkingWatch:
    """Feed each token's text; `inside` says whether the model is thinking now, `spent` how
    many tokens it has thought in all."""

    def __init__(self, tag_format: TagFormat, prefilled: bool) -> None:
        self._opener, self._closer = thinking_pair(tag_format.name, tag_format.tags)
        self._tail = ""
        self.inside = prefilled
        self.spent = 0

    def feed(self, text: str) -> None:
        tail = self._tail + text
        if self.inside:
            self.spent += 1
            if self._closer in tail:
                self.inside = False
                tail = tail[tail.index(self._closer) + len(self._closer):]
        elif self._opener in tail:
            self.inside = True
            tail = tail[tail.index(self._opener) + len(self._opener):]
        keep = max(len(self._opener), len(self._closer))
        self._tail = tail[-keep:]

    def closed(self) -> None:
        """The engine ended the thinking itself."""
        self.inside = False
        self._tail = ""
