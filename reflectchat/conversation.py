"""A chat: the system prompt, sampling settings and the turns so far. Plain Python, no UI."""

from __future__ import annotations

from dataclasses import dataclass, field

from reflectchat.answer import Answer
from reflectchat.engine.base import ChatMessage, FinishReason, GenerationStats, Sampling
from reflectchat.reflection import TagFormat


@dataclass
class Turn:
    prompt: str
    tag_format: TagFormat
    answer: Answer = field(default_factory=Answer)
    prefilled: bool = False  # the chat template opened the thinking tag itself
    stats: GenerationStats | None = None  # None while the answer streams

    @property
    def finished(self) -> bool:
        return self.stats is not None

    @property
    def stopped(self) -> bool:
        return self.stats is not None and self.stats.finish_reason is FinishReason.CANCELLED


@dataclass
class Conversation:
    system_prompt: str
    sampling: Sampling
    turns: list[Turn] = field(default_factory=list)

    def messages_for(self, prompt: str) -> list[ChatMessage]:
        """What goes to the model: earlier turns as user prompt and output, then `prompt`.
        Reasoning is left out, as reasoning models expect; a turn with no output sends its raw
        text so the model sees what it said."""
        messages = [ChatMessage("system", self.system_prompt)] if self.system_prompt else []
        for turn in self.turns:
            if not turn.finished:
                continue
            messages.append(ChatMessage("user", turn.prompt))
            reply = turn.answer.output.strip() or turn.answer.raw.strip()
            messages.append(ChatMessage("assistant", reply))
        messages.append(ChatMessage("user", prompt))
        return messages
