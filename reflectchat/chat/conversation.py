"""A chat: the system prompt, sampling settings and the turns so far. Plain Python, no UI."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from reflectchat.engine.base import ChatMessage, FinishReason, GenerationStats, Sampling, TagFormat
from reflectchat.reflection.answer import Answer
from reflectchat.reflection.dialects import dialect

if TYPE_CHECKING:
    from reflectchat.chat.comparison import Comparison


@dataclass
class Turn:
    prompt: str
    tag_format: TagFormat
    answer: Answer = field(default_factory=Answer)
    prefilled: bool = False  # the chat template opened the thinking tag itself
    stats: GenerationStats | None = None  # None while the answer streams
    comparison: Comparison | None = None  # one of two answers to this prompt, side by side

    @property
    def finished(self) -> bool:
        return self.stats is not None

    @property
    def stopped(self) -> bool:
        return self.stats is not None and \
            self.stats.finish_reason in (FinishReason.CANCELLED, FinishReason.LOOP)

    def reply(self, with_reasoning: bool) -> str:
        """What goes back to the model as this turn's answer. gpt-oss gets its answer alone
        either way: its markers are special tokens that a message's text cannot carry, and
        its model card says to drop earlier turns' reasoning."""
        if with_reasoning and self.tag_format.name != "harmony":
            opener = dialect(self.tag_format).opener if self.prefilled else None
            return (f"{opener}\n" if opener else "") + self.answer.raw.strip()
        return self.answer.output.strip() or self.answer.raw.strip()


@dataclass
class Conversation:
    system_prompt: str
    sampling: Sampling
    turns: list[Turn] = field(default_factory=list)
    with_reasoning: bool = False  # send earlier answers' reasoning back to the model too
    first_sent: int = 0  # turns before this one are kept in the chat but not sent back

    def sent_turns(self) -> list[Turn]:
        """The finished turns that go back to the model."""
        return [t for t in self.turns[self.first_sent:] if t.finished]

    def reasoning_sent(self) -> int | None:
        """Tokens of earlier reasoning that go back to the model (None: reasoning is not sent
        back, the default)."""
        if not self.with_reasoning:
            return None
        return sum(t.answer.reasoning_tokens for t in self.sent_turns())

    def messages_for(self, prompt: str) -> list[ChatMessage]:
        """What goes to the model: earlier turns as user prompt and reply, then `prompt`.
        By default a reply is the output alone, as reasoning models expect; a turn with no
        output sends its raw text so the model sees what it said."""
        messages = [ChatMessage("system", self.system_prompt)] if self.system_prompt else []
        for turn in self.sent_turns():
            messages.append(ChatMessage("user", turn.prompt))
            messages.append(ChatMessage("assistant", turn.reply(self.with_reasoning)))
        messages.append(ChatMessage("user", prompt))
        return messages

    def free_context(self) -> str:
        """Send less back to the model: earlier reasoning, if it is sent; else the oldest
        turn. Says what was dropped ("" when nothing earlier is sent)."""
        sent = self.sent_turns()
        if self.with_reasoning and self.reasoning_sent():
            self.with_reasoning = False
            return f"the reasoning of {len(sent)} earlier answer{'s' * (len(sent) != 1)}"
        if not sent:
            return ""
        self.first_sent = self.turns.index(sent[0]) + 1
        prompt = " ".join(sent[0].prompt.split())
        return f"the oldest turn (“{prompt[:40]}{'…' * (len(prompt) > 40)}”)"


def answer_reserve(n_ctx: int, sampling: Sampling) -> int:
    """Tokens kept free for the answer: its limit if set, else a quarter of the context
    (reasoning models think at length before they answer)."""
    return min(sampling.max_tokens or n_ctx // 4, n_ctx // 2)


def fit_context(messages: list[ChatMessage], count_tokens: Callable[[list[ChatMessage]], int],
                limit: int) -> tuple[list[ChatMessage], int]:
    """Drop the oldest user/assistant pairs until the prompt fits in `limit` tokens. Returns
    the messages and how many earlier turns were dropped. The system prompt and the new
    prompt always stay (if they alone do not fit, the engine says so)."""
    head = 1 if messages and messages[0].role == "system" else 0
    dropped = 0
    while len(messages) - head > 1 and count_tokens(messages) > limit:
        messages = messages[:head] + messages[head + 2:]
        dropped += 1
    return messages, dropped
