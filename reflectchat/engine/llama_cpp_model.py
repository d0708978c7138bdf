"""The second module that touches llama-cpp-python (beside llama_cpp_api.py, which loads
and reads): a loaded model's context. Beyond `Llama`'s documented API it uses `Llama._ctx`,
`Llama._batch`, `Llama._input_ids` / `n_tokens` and `Llama._init_sampler`, to run
reflectchat's own token loop (engine/token_loop.py): a prompt evaluated with the cache reused
as `Llama.generate` reuses it, a batch with logits at every drafted position, the library's
own sampler chain drawn at each, and a rejected tail dropped (speculative decoding); plus
logits for chosen positions (engine/scoring.py), an abort callback that stops a long prompt
evaluation, and a sequence's state saved and put back (engine/saved_context.py).
"""

from __future__ import annotations

import contextlib
import ctypes
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import llama_cpp
import numpy as np

from reflectchat.engine.llama_cpp_api import (
    KV_CACHE_TYPES,
    Vocab,
    check_installed,
    lacking,
    model_params,
)

_NEEDED_ATTRIBUTES = ("_model", "_ctx", "_batch", "_input_ids", "n_tokens", "metadata",
                      "_init_sampler", "_is_recurrent", "_is_hybrid")
Sampler = Any  # llama-cpp-python's sampler chain (its `_internals.LlamaSampler`)


class LoadedModel:
    """A GGUF loaded by llama.cpp, with one context. Not thread-safe."""

    def __init__(self, llm: llama_cpp.Llama) -> None:
        missing = [f"Llama.{a}" for a in _NEEDED_ATTRIBUTES if not hasattr(llm, a)]
        if missing:
            llm.close()
            raise lacking(missing)
        self.llama = llm  # the library's own object, for benchmarks against it
        self.vocab = Vocab(llm)

    @classmethod
    def load(cls, path: str, *, progress: Callable[[float], bool] | None = None,
             repack: bool = False, overrides: Sequence[tuple[str, str]] = (),
             type_k: str = "f16", type_v: str = "f16",
             tensor_split: Sequence[float] | None = None, **options: Any) -> LoadedModel:
        """Load with `Llama()`'s own options plus a progress callback, repacking and tensor
        overrides; errors are the library's (ValueError, MemoryError), for the caller to
        explain."""
        check_installed()
        with model_params(progress, repack, overrides):
            llm = llama_cpp.Llama(path, type_k=KV_CACHE_TYPES[type_k],
                                  type_v=KV_CACHE_TYPES[type_v],
                                  tensor_split=list(tensor_split) if tensor_split else None,
                                  verbose=True, **options)
        llm.verbose = False  # the load's messages went to llama.cpp's log; none while answering
        return cls(llm)

    @classmethod
    def vocab_only(cls, path: str) -> LoadedModel:
        """The tokenizer and metadata of a GGUF, no weights."""
        with model_params():
            return cls(llama_cpp.Llama(path, vocab_only=True, verbose=False))

    @property
    def metadata(self) -> dict[str, str]:
        return self.llama.metadata

    @property
    def n_ctx(self) -> int:
        """The tokens the context holds at most: llama.cpp may pad the size asked for, but
        llama-cpp-python keeps the tokens in an array of the size asked for."""
        return min(self.llama.n_ctx(), len(self.llama.input_ids))

    @property
    def n_layer(self) -> int:
        return int(llama_cpp.llama_model_n_layer(self.llama._model.model))

    @property
    def printing(self) -> bool:
        """Whether llama-cpp-python prints while generating."""
        return bool(self.llama.verbose)

    def cached_prefix(self, tokens: Sequence[int]) -> int:
        """How many of `tokens` the KV cache keeps from the last prompt instead of evaluating
        them again (as `Llama.generate` reckons it: the last token is always evaluated).
        Compared as arrays: a draft model asks at every step, over a context of thousands."""
        llm = self.llama
        count = min(llm.n_tokens, len(tokens) - 1)
        if count <= 0:
            return 0
        differ = np.flatnonzero(llm.input_ids[:count] != np.asarray(tokens[:count]))
        return int(differ[0]) if differ.size else count

    @property
    def n_batch(self) -> int:
        return self.llama.n_batch

    @property
    def n_tokens(self) -> int:
        """How many tokens the context holds."""
        return self.llama.n_tokens

    @property
    def forgets_a_tail(self) -> bool:
        """Whether the context can drop its last tokens alone (a rejected draft); recurrent
        and hybrid models cannot (llama.cpp #20039)."""
        return not (self.llama._is_recurrent or self.llama._is_hybrid)

    def sampler(self, *, top_k: int, top_p: float, min_p: float, temperature: float,
                repeat_penalty: float, seed: int | None = None) -> Sampler:
        """llama-cpp-python's own sampler chain for these settings, as `Llama.generate` builds
        it (penalties, then greedy at temperature 0, else top-k, typical, top-p, min-p,
        temperature and a seeded draw); `seed` stays for the chains after it."""
        if seed is not None:
            self.llama.set_seed(seed)
        return self.llama._init_sampler(top_k=top_k, top_p=top_p, min_p=min_p,
                                        temp=temperature, repeat_penalty=repeat_penalty)

    def sample(self, sampler: Sampler, row: int = -1) -> int:
        """A token drawn from the last decode's logits (`row`: -1 the last position that has
        them, -2 the one before, ...); the chain then counts it as accepted."""
        return int(sampler.sample(self.llama._ctx, row))

    def to_evaluate(self, tokens: Sequence[int]) -> list[int]:
        """The tail of `tokens` the context lacks, after cutting the context back to the rest
        (the last token is always evaluated again, for its logits)."""
        llm = self.llama
        same = self.cached_prefix(tokens)
        if same and llm._ctx.kv_cache_seq_rm(-1, same, -1):
            llm.n_tokens = same
        else:
            same = 0
            llm.reset()
        llm._requires_eval = True
        return list(tokens[same:])

    def evaluate(self, tokens: Sequence[int], outputs: int = 1) -> None:
        """Decode `tokens` after the context's, in batches of n_batch, with logits for the
        last `outputs` of them (all in the last batch)."""
        llm, batch = self.llama, self.llama._batch
        llm._ctx.kv_cache_seq_rm(-1, llm.n_tokens, -1)
        for i in range(0, len(tokens), llm.n_batch):
            chunk = list(tokens[i:i + llm.n_batch])
            batch.set_batch(chunk, llm.n_tokens, logits_all=False)
            if i + llm.n_batch >= len(tokens):
                for k in range(max(len(chunk) - outputs, 0), len(chunk)):
                    batch.batch.logits[k] = True
            llm._ctx.decode(batch)
            llm.input_ids[llm.n_tokens:llm.n_tokens + len(chunk)] = chunk
            llm.n_tokens += len(chunk)
        llm._requires_eval = False

    def keep(self, count: int) -> None:
        """Forget the context after its first `count` tokens (a rejected draft's tail)."""
        if not self.llama._ctx.kv_cache_seq_rm(-1, count, -1):
            raise RuntimeError("llama.cpp could not drop the rejected draft from the context")
        self.llama.n_tokens = count

    def last_logits(self) -> np.ndarray:
        """The logits at the last position the last decode gave them for."""
        row = llama_cpp.llama_get_logits_ith(self.llama._ctx.ctx, -1)
        return np.ctypeslib.as_array(row, shape=(self.vocab.size,))

    @contextlib.contextmanager
    def abort_on(self, cancel: threading.Event) -> Iterator[Callable[[], None]]:
        """While this runs, `cancel` interrupts a prompt evaluation inside llama.cpp; the
        yielded function drops that early (once decoding starts, the caller checks)."""
        ctx = self.llama._ctx.ctx
        callback = llama_cpp.ggml_abort_callback(lambda _data: cancel.is_set())
        llama_cpp.llama_set_abort_callback(ctx, callback, None)
        active = [True]

        def release() -> None:
            if active[0]:
                llama_cpp.llama_set_abort_callback(ctx, llama_cpp.ggml_abort_callback(), None)
                active[0] = False

        try:
            yield release
        finally:
            release()

    def clear_cache(self) -> None:
        """Forget every cached token: the next prompt is evaluated afresh."""
        self.llama._ctx.kv_cache_seq_rm(-1, 0, -1)
        self.llama.n_tokens = 0

    def sequence_state(self) -> tuple[list[int], bytes]:
        """The tokens the context holds and their state (sequence 0's KV cache), as
        llama.cpp's per-sequence state API writes it."""
        ctx = self.llama._ctx.ctx
        size = llama_cpp.llama_state_seq_get_size(ctx, 0)
        buffer = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_seq_get_data(ctx, buffer, size, 0)
        tokens = [int(t) for t in self.llama._input_ids[:self.llama.n_tokens]]
        return tokens, ctypes.string_at(buffer, written)

    def restore_sequence(self, tokens: list[int], data: bytes) -> bool:
        """Put back what `sequence_state` gave; False (and an empty cache) where llama.cpp
        refuses it."""
        self.clear_cache()
        ctx = self.llama._ctx.ctx
        buffer = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
        if not data or not tokens or len(tokens) > self.llama.n_ctx() or \
                llama_cpp.llama_state_seq_set_data(ctx, buffer, len(data), 0) == 0:
            self.clear_cache()
            return False
        self.llama.input_ids[:len(tokens)] = tokens
        self.llama.n_tokens = len(tokens)
        self.llama._requires_eval = True  # no logits came back: the next prompt decodes again
        return True

    def decode_with_logits(self, tokens: list[int], start: int,
                           wanted: Sequence[bool]) -> np.ndarray:
        """Decode `tokens` at positions `start`.. (at most one batch); the logits of the
        positions flagged in `wanted`, one row each, in order."""
        batch = self.llama._batch
        batch.set_batch(tokens, start, logits_all=False)
        for k, flag in enumerate(wanted):
            batch.batch.logits[k] = flag
        self.llama._ctx.decode(batch)
        rows = sum(bool(w) for w in wanted)
        if not rows:
            return np.empty((0, self.vocab.size), dtype=np.float32)
        return np.ctypeslib.as_array(self.llama._ctx.get_logits(),
                                     shape=(rows, self.vocab.size))

    def close(self) -> None:
        self.llama.close()
