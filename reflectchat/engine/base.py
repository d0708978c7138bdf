"""The backend interface: chat messages in, text pieces out, then one stats record.

Every backend (in-process llama.cpp, a remote OpenAI-compatible server) returns a `Generation`:
iterate it for text pieces, then read `stats`. The reflection parser, the UI, the store and the
benchmarks consume the same pieces.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from enum import Enum
from pathlib import Path
from typing import ClassVar, Protocol

from reflectchat.engine.special_marks import SpecialMarks

DEFAULT_CTX = 8192  # tokens, when neither the user, the model nor the server says less
MAX_TEMPERATURE = 5.0
# How much a model thinks: "off", or a level (a template's reasoning_effort, as gpt-oss reads it)
EFFORTS = ("off", "low", "medium", "high")
# What each sampling setting may be, for the settings form and imported sessions alike:
# field -> (whole number, lowest, highest)
SAMPLING_LIMITS: dict[str, tuple[bool, float, float]] = {
    "temperature": (False, 0.0, MAX_TEMPERATURE), "top_p": (False, 0.0, 1.0),
    "top_k": (True, 0, 100_000), "min_p": (False, 0.0, 1.0),
    "repeat_penalty": (False, 0.5, 2.0), "max_tokens": (True, 1, 1 << 20),
    "seed": (True, 0, 2**31 - 1), "thinking_budget": (True, 0, 1 << 20),
}


FORMAT_NAMES = ("auto", "reflection", "think", "harmony", "magistral", "seed", "thought",
                "granite", "plain")


@dataclass(frozen=True)
class TagFormat:
    """How a model marks its reasoning, for the reflection parser: a family's name
    (`FORMAT_NAMES`; "auto": the first tag decides), or "tags" with the pair of thinking tags a
    user named for a family not known yet."""

    name: str
    tags: tuple[str, str] | None = None
    # with "tags": what opens the answer ("" if nothing does) and what ends it, all markup
    # from there on ("" if nothing does): Kimi K3's <|open|>response<|sep|> and <|close|>,
    # Apriel's [END FINAL RESPONSE]
    answer: tuple[str, str] | None = None

    AUTO: ClassVar[TagFormat]
    REFLECTION: ClassVar[TagFormat]
    THINK: ClassVar[TagFormat]
    PLAIN: ClassVar[TagFormat]

    def __post_init__(self) -> None:
        if self.name == "tags":
            if not self.tags or len(self.tags) != 2 or not self.tags[1] \
                    or any(t.strip() != t for t in self.tags):
                raise ValueError("think tags are two markers, OPEN,CLOSE, each with no space "
                                 "at either end (inside one is fine: [BEGIN FINAL RESPONSE]); "
                                 "OPEN may be empty: then all before CLOSE is thinking")
            if self.tags[0] == self.tags[1]:  # every marker would both open and close
                raise ValueError(f"think tags must differ: {self.tags[0]!r} cannot both open "
                                 "and close the thinking")
            if self.answer is not None and (len(self.answer) != 2 or not any(self.answer)):
                raise ValueError("an answer wrapper is OPEN,END with one of them given")
        elif self.name not in FORMAT_NAMES or self.tags is not None or self.answer is not None:
            raise ValueError(f"unknown reasoning format {self.name!r}; one of "
                             f"{', '.join(FORMAT_NAMES)}, or think tags OPEN,CLOSE")

    @property
    def value(self) -> str:
        """The text it is stored and named by (`parse` reads it back)."""
        if self.answer is not None and self.tags:
            return "tags:" + json.dumps([*self.tags, *self.answer], ensure_ascii=False)
        return f"tags:{self.tags[0]},{self.tags[1]}" if self.tags else self.name

    @property
    def label(self) -> str:
        """How it is named to the user (the status bar, `ask`'s stderr)."""
        if self.answer is not None and self.tags:
            return f"{self.tags[0] or 'thinking'}…{self.tags[1]} (answer wrapped)"
        return self.value

    @classmethod
    def parse(cls, text: str) -> TagFormat:
        """A format's name, "tags:OPEN,CLOSE", or "tags:" and a JSON list of the thinking
        pair and the answer wrapper; ValueError for anything else."""
        if text.startswith("tags:["):
            try:
                markers = json.loads(text[len("tags:"):])
            except (ValueError, RecursionError):
                markers = None
            if not (isinstance(markers, list) and len(markers) == 4
                    and all(isinstance(m, str) for m in markers)):
                raise ValueError(f"not a stored reasoning format: {text[:80]!r}")
            return cls("tags", (markers[0], markers[1]), (markers[2], markers[3]))
        if text.startswith("tags:"):
            return cls.think_tags(text[len("tags:"):])
        return cls(text)

    @classmethod
    def think_tags(cls, pair: str, answer: str | None = None) -> TagFormat:
        """The user's own thinking tags, "OPEN,CLOSE" (--think-tags), and the answer's
        wrapper, "OPEN,END" with either left empty (--answer-tags)."""
        opener, comma, closer = pair.partition(",")
        if not comma:
            raise ValueError(f"think tags are OPEN,CLOSE, not {pair!r}")
        if answer is None:
            return cls("tags", (opener, closer))
        start, comma, end = answer.partition(",")
        if not comma or start.strip() != start or end.strip() != end:
            raise ValueError(f"answer tags are OPEN,END (either may be empty, neither with a "
                             f"space at either end), not {answer!r}")
        return cls("tags", (opener, closer), (start, end))


TagFormat.AUTO = TagFormat("auto")
TagFormat.REFLECTION = TagFormat("reflection")
TagFormat.THINK = TagFormat("think")
TagFormat.PLAIN = TagFormat("plain")


@dataclass(frozen=True)
class FoundFormat:
    """A reasoning format and why it was chosen ("from the template", "--format", ...)."""

    tag_format: TagFormat
    why: str


class FinishReason(str, Enum):
    STOP = "stop"
    LENGTH = "length"
    CANCELLED = "cancelled"
    LOOP = "loop"  # stopped: the model was repeating itself
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
    # None: the room left in the context (a reasoning model may think 15,000 tokens; a model
    # that never ends is stopped as a loop, or at the context's end)
    max_tokens: int | None = None
    seed: int | None = None
    effort: str | None = None  # one of EFFORTS; None: the model's default
    thinking_budget: int | None = None  # thinking tokens before the engine ends the thinking
    stop_loops: bool = True  # end an answer that repeats itself (finish reason "loop")


OWN = "model"  # the chat template name that picks the GGUF's own template
# speculative decoding (token_loop.py): what drafts the tokens the model checks
SPECULATION = ("off", "ngram", "draft")
DEFAULT_SPECULATION = "ngram"  # without a draft model (docs/benchmarks.md: where it pays)
KV_TYPES = ("f32", "f16", "q8_0", "q5_1", "q5_0", "q4_1", "q4_0", "iq4_nl")  # KV cache types


@dataclass(frozen=True)
class Runtime:
    """How a local model runs, as the user may change it in the app (F8) or on the command
    line; None: the default (the planned context and GPU layers, llama.cpp's threads)."""

    n_ctx: int | None = None
    n_threads: int | None = None
    gpu_layers: int | None = None  # -1: all
    experts_in_ram: int | None = None  # a mixture of experts: the first N layers' experts
    # speculative decoding: "off", "ngram", or a draft model (a GGUF's path or a catalog id)
    speculation: str | None = None


@dataclass
class GenerationStats:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    prompt_evaluated: int | None = None  # prompt tokens not already in the model's cache
    time_to_first_token_s: float | None = None
    tokens_per_second: float | None = None
    total_s: float = 0.0
    finish_reason: FinishReason = FinishReason.STOP
    error: str | None = None
    effort: str | None = None  # the reasoning effort the answer was asked with
    thinking_budget: int | None = None  # the thinking budget it ran under
    reasoning_note: str | None = None  # what of the effort or budget could not be applied
    speculation: str | None = None  # "draft" or "ngram": what drafted tokens (token_loop.py)
    drafted: int | None = None  # tokens proposed for the model to check
    accepted: int | None = None  # of them, the tokens the model kept
    speedup: float | None = None  # tokens a second over the plain steps' pace

    @property
    def acceptance(self) -> float | None:
        """The share of drafted tokens the model kept (None: nothing drafted)."""
        return self.accepted / self.drafted if self.drafted and self.accepted is not None \
            else None

    def speculation_text(self) -> str | None:
        """"spec 71% · 2.1x": the share of drafted tokens kept and the speed-up, once
        anything was drafted."""
        share = self.acceptance
        if share is None:
            return None
        text = f"spec {share:.0%}"
        return f"{text} · {self.speedup:.1f}x" if self.speedup is not None else text

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["finish_reason"] = self.finish_reason.value
        return data


class Generation(Protocol):
    """Iterate for text pieces; `stats` is complete once iteration ends."""

    stats: GenerationStats
    prefilled_thinking: bool  # the prompt already opened the thinking tag
    special: SpecialMarks | None  # where the answer's special tokens are (None: unknown)

    def __iter__(self) -> Iterator[str]: ...


@dataclass(frozen=True)
class SpeedSource:
    """What a model's answers measure about this machine: the GGUF run in this process, its
    context and its layers on a GPU as llama.cpp and the plan count them (n_layer + 1: all,
    with the output layer)."""

    path: Path
    n_ctx: int
    offloaded: int


class Backend(Protocol):
    """Everything the app, `ask` and the store read from a loaded model."""

    name: str  # the kind of backend: "llama.cpp" or "remote"
    model: str | None  # the model a server says it serves; None for a file run in-process
    template: str  # the chat template: "model" (the GGUF's own), a llama.cpp built-in, "server"
    load_note: str | None  # how the load went, when the user should hear of it
    context_stated: bool  # n_ctx is the model's real context (a server may not say)
    # the reasoning format the model file says it writes (None: a server, whose template and
    # vocabulary we cannot see)
    found_format: FoundFormat | None

    @property
    def n_ctx(self) -> int: ...

    @property
    def layer_count(self) -> int:
        """Repeating layers in the model (0: unknown, as on a server)."""
        ...

    @property
    def gpu_layers(self) -> int:
        """Repeating layers on a GPU in this process (0 on a server)."""
        ...

    @property
    def speed_source(self) -> SpeedSource | None:
        """What its answers' speed measures (None: a server, or the paced demo, whose speed
        says nothing of this machine)."""
        ...

    def count_tokens(self, messages: list[ChatMessage]) -> int:
        """The prompt these messages make, in tokens."""
        ...

    def generate(
        self,
        messages: list[ChatMessage],
        sampling: Sampling,
        cancel: threading.Event | None = None,
        tag_format: TagFormat = ...,
    ) -> Generation:
        """`tag_format`: how the answer will be read, for a thinking budget to know the end of
        thinking it writes (TagFormat.AUTO when not given)."""
        ...

    def close(self) -> None: ...
