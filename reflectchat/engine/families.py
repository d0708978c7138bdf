"""The markers each reasoning family writes, as their model cards and llama.cpp's chat parsers
(common/chat*.cpp) show them: what the engine looks for in a GGUF's template and vocabulary,
and what the reflection parser's dialects are made of."""

from __future__ import annotations

# the pair of thinking tags of each family that has one
THINK_TAGS: dict[str, tuple[str, str]] = {
    "think": ("<think>", "</think>"), "magistral": ("[THINK]", "[/THINK]"),
    "seed": ("<seed:think>", "</seed:think>"), "thought": ("<thought>", "</thought>"),
    "granite": ("<think>", "</think>"), "reflection": ("<thinking>", "</thinking>"),
}
GRANITE_THINKING = "Here is my thought process:"  # Granite 3.2's plain-text headings
GRANITE_RESPONSE = "Here is my response:"
HARMONY_CHANNEL, HARMONY_MESSAGE = "<|channel|>", "<|message|>"  # gpt-oss
HARMONY_START, HARMONY_CONSTRAIN = "<|start|>", "<|constrain|>"
HARMONY_ENDS = ("<|end|>", "<|return|>", "<|call|>")
# what a template that opens the thinking itself ends the prompt with, for any family
THINKING_OPENERS = tuple(dict.fromkeys(opener for opener, _ in THINK_TAGS.values()))


def thinking_pair(family: str, tags: tuple[str, str] | None = None) -> tuple[str, str]:
    """What to wrap reasoning in that a server sent apart from the answer, so that the
    family's parser reads it as thinking (`<think>` for a family without a pair)."""
    if tags:
        return tags
    if family == "harmony":
        return f"{HARMONY_CHANNEL}analysis{HARMONY_MESSAGE}", HARMONY_ENDS[0]
    return THINK_TAGS.get(family, THINK_TAGS["think"])
