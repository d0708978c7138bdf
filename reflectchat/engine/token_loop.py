"""reflectchat's token loop: the prompt evaluated (the cache reused as `Llama.generate` reuses
it), then one token sampled at a time with llama-cpp-python's own sampler chain, or, with a
drafter, several at a time by speculative decoding (Leviathan et al., arXiv 2211.17192, as
llama.cpp's common/speculative does it):

- the drafter proposes up to k tokens (a draft model greedily, or n-grams from the context);
- the model decodes its last token and the k drafts in one batch, with logits at every position;
- the sampler draws at each position in turn and keeps going while its draw equals the draft;
  the first draw that differs (or the draw after the last draft) is the model's own next token;
- the context drops the rejected drafts.

Every token is the one the model's sampler draws after exactly the tokens before it, so the
output is the model's own: greedy answers are the same token for token, and a seeded sampled
answer draws the same numbers in the same order (one draw per token kept, none for a rejected
draft). The caller reads tokens one at a time and may stop after any of them: a stop, a budget
or a limit acts at the exact token (the context may hold a few accepted tokens more; the next
prompt's cache check cuts them).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator, Sequence
from typing import Protocol

from reflectchat.engine.base import GenerationStats, Sampling
from reflectchat.engine.llama_cpp_model import LoadedModel

PLAIN_FIRST = 4  # the first steps after the prompt draft nothing: the speed-up's baseline
PLAIN_EVERY = 128  # and one step in this many after them
_PLAIN_KEPT = 32  # the plain steps' latest times kept


class Drafter(Protocol):
    """Proposes the tokens likely to come next."""

    kind: str  # "draft" or "ngram", as the stats record it
    most: int  # the most tokens it proposes at a time

    def start(self, history: Sequence[int]) -> None:
        """A new run of tokens begins: `history` is the context so far."""

    def propose(self, history: Sequence[int], most: int) -> list[int]:
        """Up to `most` tokens to follow `history` (which grows by the tokens kept)."""

    def taken(self, drafted: int, accepted: int) -> None:
        """How many of the last proposal the model kept."""


class Tally:
    """What speculation did, kept in the answer's stats as it goes: drafted and accepted
    tokens, and the speed-up: tokens a second over the pace of plain steps (steps that
    drafted nothing; the first `PLAIN_FIRST` and one in `PLAIN_EVERY` are made plain),
    their median time, so a first step's warm-up does not count."""

    def __init__(self, stats: GenerationStats, kind: str) -> None:
        self.stats = stats
        stats.speculation, stats.drafted, stats.accepted = kind, 0, 0
        self.steps = 0
        self.tokens = 0  # tokens the steps after the prompt gave
        self.seconds = 0.0
        self.plain: list[float] = []

    def plain_due(self) -> bool:
        return self.steps < PLAIN_FIRST or self.steps % PLAIN_EVERY == 0

    def step(self, drafted: int, accepted: int, seconds: float, decode_seconds: float) -> None:
        stats = self.stats
        stats.drafted = (stats.drafted or 0) + drafted
        stats.accepted = (stats.accepted or 0) + accepted
        self.steps += 1
        self.tokens += accepted + 1
        self.seconds += seconds
        if not drafted:
            self.plain = [*self.plain[1 - _PLAIN_KEPT:], decode_seconds]
        if self.plain and self.seconds > 0 and self.steps > PLAIN_FIRST:
            stats.speedup = self.tokens / self.seconds * statistics.median(self.plain)


def sampled_tokens(model: LoadedModel, context: Sequence[int], sampling: Sampling,
                   seed: int | None, drafter: Drafter | None = None,
                   tally: Tally | None = None) -> Iterator[int]:
    """The tokens the model samples after `context`, without end (the caller stops)."""
    sampler = model.sampler(top_k=sampling.top_k, top_p=sampling.top_p,
                            min_p=sampling.min_p, temperature=sampling.temperature,
                            repeat_penalty=sampling.repeat_penalty, seed=seed)
    history = list(context)
    pending = model.to_evaluate(history)
    if drafter is not None:
        drafter.start(history)
    prompt = True
    while True:
        began = time.perf_counter()
        drafts: list[int] = []
        if drafter is not None and not prompt and tally is not None and not tally.plain_due():
            room = min(model.n_ctx - model.n_tokens, model.n_batch) - len(pending)
            if room > 0:
                drafts = drafter.propose(history, min(drafter.most, room))
        decoding = time.perf_counter()
        model.evaluate(pending + drafts, outputs=len(drafts) + 1)
        kept = model.n_tokens - len(drafts)
        drawn: list[int] = []
        for i in range(len(drafts) + 1):
            drawn.append(model.sample(sampler, i - len(drafts) - 1))
            if i == len(drafts) or drawn[-1] != drafts[i]:
                break
        accepted = len(drawn) - 1
        if drafts:
            model.keep(kept + accepted)
            assert drafter is not None
            drafter.taken(len(drafts), accepted)
        if tally is not None and not prompt:
            ended = time.perf_counter()
            tally.step(len(drafts), accepted, ended - began, ended - decoding)
        prompt = False
        for token in drawn:
            history.append(token)
            yield token
        pending = [drawn[-1]]
