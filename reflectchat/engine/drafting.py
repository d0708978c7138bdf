"""What proposes the tokens speculative decoding checks (engine/token_loop.py): n-grams from
the context itself, or a small draft model that shares the target's vocabulary.

N-grams (llama.cpp's ngram-simple and prompt-lookup decoding): the last few tokens are looked
up among the earlier text of the same context and what followed them last time is proposed. A
reasoning model's answer restates its thinking, and an edit restates its code, so long runs
come back; where nothing matches, nothing is proposed and the step costs what a plain one does.

A draft model proposes greedily, as llama.cpp's draft-simple does, and stops early where its
own top token is less likely than `p_min`. It must read and write the target's tokens: the
same vocabulary type, start and end tokens, sizes within 128 and the same token texts from id
5 on (llama.cpp's common_speculative_are_compatible).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from contextlib import redirect_stderr
from pathlib import Path

import numpy as np

from reflectchat.engine.errors import EngineError
from reflectchat.engine.gguf_file import check_before_load
from reflectchat.engine.llama_cpp_model import LoadedModel
from reflectchat.engine.llama_log import capture_llama_log, recent_errors
from reflectchat.engine.llama_settings import EngineSettings

NGRAM = 3  # tokens matched before an n-gram proposes what followed them
NGRAM_MOST = 16  # the most an n-gram match proposes at a time
DRAFT_MOST = 8  # the most a draft model proposes at a time (--draft-max)
DRAFT_P_MIN = 0.5  # a draft model stops proposing below this probability (--draft-p-min)
_WAIT_MOST = 256  # steps an n-gram drafter waits at most after rejected proposals
_VOCAB_SLACK = 128  # vocabulary sizes may differ by this much (llama.cpp's rule)
_TEXTS_FROM = 5  # token texts must agree from this id on


class NgramDraft:
    """Proposes what followed the latest earlier occurrence of the context's last `size`
    tokens; the proposal's length follows how much of the last ones the model kept, and
    after proposals the model rejected outright it waits (2, 4, 8, ... up to `_WAIT_MOST`
    steps) before proposing again: text whose n-grams recur with other continuations costs
    a checked token now and then, not every step. While it waits it still guesses, for free:
    a guess the model then writes ends the wait."""

    kind = "ngram"

    def __init__(self, size: int = NGRAM, most: int = NGRAM_MOST) -> None:
        self.size, self.most = size, most
        self._after: dict[tuple[int, ...], int] = {}  # an n-gram -> where its latest one ended
        self._indexed = 0  # n-grams ending before this position are in `_after`
        self._length = most
        self._misses = 0  # proposals in a row the model rejected outright
        self._wait = 0  # steps to go before proposing again
        self._guess: tuple[int, int] | None = None  # (position, token) guessed while waiting

    def start(self, history: Sequence[int]) -> None:
        self._after.clear()
        self._indexed = 0

    def propose(self, history: Sequence[int], most: int) -> list[int]:
        n = self.size
        for end in range(max(self._indexed, n), len(history)):
            self._after[tuple(history[end - n:end])] = end
        self._indexed = max(self._indexed, len(history))
        if self._guess is not None and len(history) > self._guess[0]:
            if history[self._guess[0]] == self._guess[1]:
                self._wait = self._misses = 0
            self._guess = None
        at = self._after.get(tuple(history[-n:])) if len(history) > n else None
        if at is None or self._wait:
            self._wait = max(self._wait - 1, 0)
            if at is not None:
                self._guess = (len(history), history[at])
            return []
        return list(history[at:at + min(most, self._length)])

    def taken(self, drafted: int, accepted: int) -> None:
        if accepted == drafted:
            self._length = min(self._length * 2, self.most)
        if accepted == 0:
            self._length = max(self._length // 2, 1)
            self._misses += 1
            self._wait = min(1 << self._misses, _WAIT_MOST)
        else:
            self._misses = 0


class ModelDraft:
    """A small model that shares the target's vocabulary, drafting greedily in its own
    context (cut back to the accepted tokens as the target's is)."""

    kind = "draft"

    def __init__(self, model: LoadedModel, most: int = DRAFT_MOST,
                 p_min: float = DRAFT_P_MIN) -> None:
        self.model, self.most, self.p_min = model, most, p_min

    def start(self, history: Sequence[int]) -> None:
        """Its context follows the history by the cache check alone."""

    def propose(self, history: Sequence[int], most: int) -> list[int]:
        model = self.model
        model.evaluate(model.to_evaluate(history))
        proposed: list[int] = []
        while len(proposed) < most:
            logits = model.last_logits()
            token = int(np.argmax(logits))
            if self.p_min > 0:
                chance = 1.0 / float(np.sum(np.exp(logits - logits[token])))
                if chance < self.p_min:
                    break
            proposed.append(token)
            if len(proposed) == most or model.vocab.is_eog(token):
                break
            model.evaluate([token])
        return proposed

    def taken(self, drafted: int, accepted: int) -> None:
        """The draft's context is cut back at the next proposal."""


def load_draft(model: LoadedModel, name: str, settings: EngineSettings,
               threads: tuple[int, int], repack: bool) -> LoadedModel:
    """The draft model `settings` name, in a context as long as the model's (`name`: the
    model's file name); EngineError in one sentence if it cannot be loaded or cannot draft
    for this model."""
    s = settings
    assert s.draft_model is not None
    path = Path(s.draft_model).expanduser()
    why = None if model.forgets_a_tail else (
        "this model's memory is recurrent and cannot drop a rejected draft (llama.cpp #20039)")
    draft = None
    if why is None:
        try:
            check_before_load(path)
            with redirect_stderr(io.StringIO()):  # llama-cpp-python's own prints
                draft = LoadedModel.load(
                    str(path), repack=repack, n_gpu_layers=s.draft_gpu_layers, n_ctx=s.n_ctx,
                    n_batch=s.n_batch, flash_attn=s.flash_attn, n_threads=threads[0],
                    n_threads_batch=threads[1], use_mmap=s.use_mmap)
        except EngineError as exc:
            why = str(exc)
        except (ValueError, MemoryError) as exc:
            said = recent_errors[0] if recent_errors else str(exc)
            why = f"llama.cpp could not load it ({said})"
    if draft is not None and why is None:
        why = incompatible(model, draft)
    if why is not None:
        if draft is not None:
            draft.close()
        raise EngineError(f"{path.name} cannot draft for {name}: {why}")
    assert draft is not None
    return draft


def incompatible(target: LoadedModel, draft: LoadedModel) -> str | None:
    """Why `draft` cannot draft for `target`, in one sentence; None if it can."""
    t, d = target.vocab, draft.vocab
    if t.kind != d.kind:
        return "the two models use different kinds of tokenizer"
    if (t.bos, t.eos, t.adds_bos) != (d.bos, d.eos, d.adds_bos):
        return "the two models' start and end tokens differ"
    if abs(t.size - d.size) > _VOCAB_SLACK:
        return (f"the vocabularies differ in size ({t.size:,} and {d.size:,} tokens; "
                f"at most {_VOCAB_SLACK} apart is allowed)")
    for token in range(_TEXTS_FROM, min(t.size, d.size)):
        if t.text(token) != d.text(token):
            return (f"token {token} is {t.text(token)!r} for the model and "
                    f"{d.text(token)!r} for the draft: they do not share a vocabulary")
    return None


def pair_problem(model: Path, draft: Path) -> str | None:
    """Why `draft` cannot draft for `model`, from their vocabularies alone (no weights
    loaded), in one sentence; None if it can."""
    capture_llama_log()  # its load messages are not the user's to read
    loaded: list[LoadedModel] = []
    try:
        for path in (model, draft):
            check_before_load(path)
            try:
                loaded.append(LoadedModel.vocab_only(str(path)))
            except ValueError:
                return f"llama.cpp could not read the vocabulary of {path.name}"
        return incompatible(*loaded)
    except EngineError as exc:
        return str(exc)
    finally:
        for vocab in loaded:
            vocab.close()
