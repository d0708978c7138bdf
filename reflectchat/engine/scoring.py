"""Scoring text with a loaded model, no generation: the cross-entropy of a target span given
what comes before it, from llama.cpp's logits for exactly the positions that predict the span.

A position's logits predict the next token, so the span's first token is predicted by the last
token before it; llama.cpp computes the output layer only for the positions flagged in the
batch, so the prefix costs a plain prompt evaluation and only the span's predictions pay for
logits. The log-softmax runs in numpy over the rows llama.cpp returns, in batch order.

Scoring shares the model's context with chat: it clears the KV cache, so the next answer
evaluates its prompt afresh.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from reflectchat.engine.base import ChatMessage
from reflectchat.engine.errors import EngineError

if TYPE_CHECKING:
    from reflectchat.engine.llama import LlamaEngine


@dataclass(frozen=True)
class SpanLoss:
    total: float  # sum of -log p(token | everything before it) over the span, in nats
    tokens: int  # tokens scored

    @property
    def loss(self) -> float:
        """Mean cross-entropy per token (NaN for an empty span)."""
        return self.total / self.tokens if self.tokens else math.nan

    @property
    def perplexity(self) -> float:
        return math.exp(self.loss) if self.tokens else math.nan


class TooLong(EngineError):
    """The text does not fit the model's context; it is skipped, never cut."""


class Scorer:
    """Span losses with one loaded llama.cpp model."""

    def __init__(self, engine: LlamaEngine) -> None:
        self.engine = engine
        self._loaded = engine.model
        self.tokens_evaluated = 0  # every token decoded, prefixes included

    def text_tokens(self, text: str) -> list[int]:
        """`text` as plain text: no start token, and special-token markup kept literal."""
        return self._loaded.vocab.tokenize(text, special=False)

    def start(self) -> list[int]:
        """What the model's text starts with when nothing comes before it: its start token,
        if its vocabulary adds one."""
        vocab = self._loaded.vocab
        return [vocab.bos] if vocab.adds_bos else []

    def chat_prefix(self, user_text: str) -> list[int]:
        """The chat template up to where the assistant's answer begins, for `user_text`."""
        return self.engine.prompt.tokens([ChatMessage("user", user_text)])

    def span_loss(self, prefix: list[int], target: list[int]) -> SpanLoss:
        """The loss of `target` after `prefix`. Without a prefix the first target token has
        nothing to be predicted from and is not scored."""
        tokens = prefix + target
        n_ctx = self.engine.n_ctx
        if len(tokens) > n_ctx:
            raise TooLong(f"{len(tokens):,} tokens do not fit the {n_ctx:,}-token context")
        first = max(len(prefix), 1)  # the first scored token's position
        self._loaded.clear_cache()  # the chat's cached prompt is gone
        total, count = 0.0, 0
        n_batch = self.engine.settings.n_batch
        for start in range(0, len(tokens), n_batch):
            chunk = tokens[start:start + n_batch]
            wanted = [first - 1 <= start + k <= len(tokens) - 2 for k in range(len(chunk))]
            logits = self._loaded.decode_with_logits(chunk, start, wanted)
            self.tokens_evaluated += len(chunk)
            rows = [start + k for k, flag in enumerate(wanted) if flag]
            if rows:
                total += _neg_log_likelihood(logits, [tokens[p + 1] for p in rows])
                count += len(rows)
        return SpanLoss(total, count)


def _neg_log_likelihood(logits: np.ndarray, targets: list[int]) -> float:
    """Sum over rows of logsumexp(row) - row[target]."""
    top = logits.max(axis=1, keepdims=True)
    log_sum = np.log(np.exp(logits - top).sum(axis=1, dtype=np.float64)) + top[:, 0]
    chosen = logits[np.arange(len(targets)), targets]
    return float(np.sum(log_sum - chosen))
