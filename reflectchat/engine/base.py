"""The backend interface: chat messages in, text pieces out, then one stats record.

Every backend (in-process llama.cpp, a remote OpenAI-compatible server) returns a `Generation`:
iterate it for text pieces, then read `stats`. The reflection parser, the UI, the store and the
benchmarks consume the same pieces.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from enum import Enum
from typing import Protocol


class FinishReason(str, Enum):
    STOP = "stop"
    LENGTH = "length"
    CANCELLED = "cancelled"
    ERROR = "error"
    INTERRUPTED = "interrupted"  # the app stopped (was killed) before the answer finished


@dataclass(frozen=True)
class ChatMessage:
    role: str  # "system" | "user" | "assistant"
    content: str


@dataclass(frozen=True)
class Sampling:
    temperature: float = 0.7
    top_p: float = 0.95
    top_k: int = 40
    min_p: float = 0.0
    repeat_penalty: float = 1.0
    max_tokens: int | None = None  # None: until the context is full
    seed: int | None = None


@dataclass
class GenerationStats:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    time_to_first_token_s: float | None = None
    tokens_per_second: float | None = None
    total_s: float = 0.0
    finish_reason: FinishReason = FinishReason.STOP
    error: str | None = None

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["finish_reason"] = self.finish_reason.value
        return data


class Generation(Protocol):
    """Iterate for text pieces; `stats` is complete once iteration ends."""

    stats: GenerationStats
    prefilled_thinking: bool  # the prompt already opened the thinking tag

    def __iter__(self) -> Iterator[str]: ...


class Backend(Protocol):
    name: str

    @property
    def n_ctx(self) -> int: ...

    def count_tokens(self, messages: list[ChatMessage]) -> int:
        """The prompt these messages make, in tokens."""
        ...

    def generate(
        self,
        messages: list[ChatMessage],
        sampling: Sampling,
        cancel: threading.Event | None = None,
    ) -> Generation: ...

    def close(self) -> None: ...
