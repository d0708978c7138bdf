"""The in-process backend: a GGUF model run by llama.cpp through llama-cpp-python.

We run our own token loop (token_loop.py, read in llama_generation.py) instead of
`create_chat_completion`, because the library's streaming drops special tokens (the tags of
Reflection GGUFs) and long pieces (see `pieces.py`), and has no speculative decoding with a
draft model. The loop stops on any end-of-generation token, checks the stop event between
tokens, and can abort a long prompt evaluation through llama.cpp's abort callback.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from contextlib import redirect_stderr
from functools import cache
from pathlib import Path

from reflectchat.engine.base import (
    ChatMessage,
    Sampling,
    SpeedSource,
    TagFormat,
)
from reflectchat.engine.cpu import default_threads, repack_default
from reflectchat.engine.drafting import (
    DRAFT_MOST,
    DRAFT_P_MIN,
    NGRAM_MOST,
    ModelDraft,
    NgramDraft,
    load_draft,
)
from reflectchat.engine.errors import EngineError
from reflectchat.engine.families import THINKING_OPENERS
from reflectchat.engine.gguf_file import check_before_load, diagnose_load_failure, tensor_names
from reflectchat.engine.llama_cpp_api import supports_gpu_offload
from reflectchat.engine.llama_cpp_model import LoadedModel
from reflectchat.engine.llama_generation import LlamaGeneration
from reflectchat.engine.llama_log import (
    capture_llama_log,
    loaded_buffers,
    overridden_tensors,
    recent_errors,
)
from reflectchat.engine.llama_settings import EngineSettings
from reflectchat.engine.placement import check_patterns
from reflectchat.engine.prompt import ChatPrompt, choose_template
from reflectchat.engine.special_marks import marker_parts
from reflectchat.engine.token_loop import Drafter


class LlamaEngine:
    """A loaded GGUF model. Not thread-safe: run one generation at a time."""

    name = "llama.cpp"
    model = None
    context_stated = True

    def __init__(
        self,
        model_path: Path | str,
        settings: EngineSettings | None = None,
        progress: Callable[[float], bool] | None = None,
    ) -> None:
        """`progress` is called with 0..1 while the weights load; returning False aborts."""
        self.path = Path(model_path).expanduser()
        self.settings = settings or EngineSettings()
        self.settings.check()
        check_before_load(self.path)
        if self.settings.overrides:
            check_patterns(self.settings.overrides, tensor_names(self.path))
        capture_llama_log()
        s = self.settings
        chosen = default_threads()
        # --threads names one count for both, as llama.cpp's -t does when -tb is not given
        self.threads = (s.n_threads or chosen.decode, s.n_threads or chosen.batch)
        self.repack = repack_default() if s.repack is None else s.repack
        aborted = threading.Event()

        try:
            # verbose=False would have llama-cpp-python point file descriptors 1 and 2 at
            # /dev/null for the whole load: an app painting the terminal meanwhile loses its
            # frames (the panes stayed blank until a resize). Its own prints go to a buffer.
            with redirect_stderr(io.StringIO()):
                self.model = LoadedModel.load(
                    str(self.path), progress=_noting_abort(progress, aborted),
                    repack=self.repack, overrides=s.overrides,
                    n_gpu_layers=s.n_gpu_layers, n_ctx=s.n_ctx,
                    n_batch=s.n_batch, flash_attn=s.flash_attn, type_k=s.type_k,
                    type_v=s.type_v, tensor_split=s.tensor_split, n_threads=self.threads[0],
                    n_threads_batch=self.threads[1], use_mmap=s.use_mmap,
                    use_mlock=s.use_mlock)
        except (ValueError, MemoryError) as exc:
            if isinstance(exc, MemoryError) or "context" in str(exc):
                raise EngineError(
                    f"Could not create a {s.n_ctx:,}-token context for this model: not enough "
                    "memory; try a smaller context (--ctx), a quantized KV cache or fewer GPU "
                    "layers"
                ) from None
            if aborted.is_set():
                raise EngineError("Loading the model was cancelled") from None
            said = recent_errors[0] if recent_errors else ""  # the cause; later lines follow it
            if s.overrides and ("regular expression" in said or "regex" in said):
                why = said.split("error loading model: ")[-1]
                raise EngineError("llama.cpp could not use the tensor override pattern(s) "
                                  f"{', '.join(p for p, _ in s.overrides)}: {why}") from None
            problem = diagnose_load_failure(self.path, said)
            if said and "unknown model architecture" not in said:
                problem += f" (llama.cpp: {said})"
            raise EngineError(problem) from None
        self.draft = None
        if s.speculation == "draft":
            try:
                self.draft = load_draft(self.model, self.path.name, s, self.threads,
                                        self.repack)
            except EngineError:
                self.model.close()
                raise
        self.overridden = overridden_tensors()  # tensor -> the buffer type an override chose
        self.buffers = loaded_buffers()  # what llama.cpp allocated, by "DEVICE kind"
        try:
            self.prompt = ChatPrompt(self.model, choose_template(self.model.metadata,
                                                                 s.template), self.path.name)
        except EngineError:
            self.model.close()
            raise
        # the context's users take turns: an answer, and a save or restore of its state
        self.lock = threading.Lock()
        self.context_session: int | None = None  # the session whose context the cache holds
        self.found_format = self.prompt.found_format()
        pair = self.found_format.tag_format.tags
        self._openers = THINKING_OPENERS + ((pair[0],) if pair and pair[0] else ())
        self.marker_parts = cache(marker_parts(self.model.vocab.specials_in))
        fallback = self.prompt.take_fallback_note()
        notes = [f"{fallback}." if fallback else self.prompt.template.note,
                 self.prompt.turn_end_note()]
        self.load_note = " ".join(n for n in notes if n) or None

    def drafter(self) -> Drafter | None:
        """What proposes tokens for one answer, as the settings ask (None: no speculation)."""
        s = self.settings
        if s.speculation == "ngram" and self.model.forgets_a_tail:  # recurrent: cannot cut back
            return NgramDraft(most=s.draft_max or NGRAM_MOST)
        if self.draft is not None:
            return ModelDraft(self.draft, s.draft_max or DRAFT_MOST,
                              DRAFT_P_MIN if s.draft_p_min is None else s.draft_p_min)
        return None

    @property
    def template(self) -> str:
        """The chat template in use: prompt.OWN or a llama.cpp built-in's name."""
        return self.prompt.template.name

    @property
    def n_ctx(self) -> int:
        return self.model.n_ctx

    @property
    def layer_count(self) -> int:
        """Repeating layers in the model (llama.cpp offloads them plus the output layer)."""
        return self.model.n_layer

    @property
    def gpu_layers(self) -> int:
        """Repeating layers this engine put on a GPU."""
        if not supports_gpu_offload():
            return 0
        wanted = self.settings.n_gpu_layers
        return self.layer_count if wanted < 0 else min(wanted, self.layer_count)

    @property
    def offloaded_layers(self) -> int:
        """The GPU layers as llama.cpp and the plan count them (n_layer + 1: all, with the
        output layer)."""
        wanted = self.settings.n_gpu_layers
        if self.gpu_layers and (wanted < 0 or wanted > self.layer_count):
            return self.layer_count + 1
        return self.gpu_layers

    @property
    def speed_source(self) -> SpeedSource | None:
        if self.settings.pace:  # the demo's replay
            return None
        return SpeedSource(self.path, self.settings.n_ctx, self.offloaded_layers)

    def count_tokens(self, messages: list[ChatMessage]) -> int:
        return len(self.prompt.tokens(messages))

    def generate(
        self,
        messages: list[ChatMessage],
        sampling: Sampling,
        cancel: threading.Event | None = None,
        tag_format: TagFormat = TagFormat.AUTO,
    ) -> LlamaGeneration:
        variables, note = self.prompt.effort(sampling.effort)
        budget = sampling.thinking_budget
        if sampling.effort == "off" and not variables:
            budget = 0  # no switch in the template: the engine ends the thinking at once
        generation = LlamaGeneration(
            self, self.prompt.tokens(messages, variables), sampling,
            cancel or threading.Event(),
            prefilled=self.prompt.ending(self._openers, messages, variables),
            asked=next((m.content for m in reversed(messages) if m.role == "user"), ""),
        )
        if budget is not None and tag_format == TagFormat.PLAIN:
            note = "; ".join(n for n in (note, "this model marks no thinking, so a thinking "
                                               "budget cannot apply") if n)
        elif budget is not None:
            generation.limit_thinking(tag_format, budget)
        notes = [n for n in (self.prompt.take_fallback_note(), note) if n]
        generation.stats.effort = sampling.effort
        generation.stats.reasoning_note = "; ".join(notes) or None
        return generation

    def close(self) -> None:
        with self.lock:  # after a save still copying the context out, never during it
            self.model.close()
            if self.draft is not None:
                self.draft.close()


def _noting_abort(progress: Callable[[float], bool] | None,
                  aborted: threading.Event) -> Callable[[float], bool] | None:
    """`progress`, noting in `aborted` when it asks the load to stop."""
    if progress is None:
        return None

    def report(value: float) -> bool:
        keep_going = bool(progress(value))
        if not keep_going:
            aborted.set()
        return keep_going

    return report
