"""The in-process backend: a GGUF model run by llama.cpp through llama-cpp-python.

We run our own token loop over `Llama.generate` instead of `create_chat_completion`, because
the library's streaming drops special tokens (the tags of Reflection GGUFs) and long pieces;
see `pieces.py`. The loop stops on any end-of-generation token, checks the stop event between
tokens, and can abort a long prompt evaluation through llama.cpp's abort callback.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import nullcontext, redirect_stderr
from functools import cache
from pathlib import Path

from reflectchat.engine.base import (
    ChatMessage,
    FinishReason,
    GenerationStats,
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
from reflectchat.engine.llama_log import (
    capture_llama_log,
    loaded_buffers,
    overridden_tensors,
    recent_errors,
)
from reflectchat.engine.llama_settings import EngineSettings
from reflectchat.engine.loops import TOKENS, LoopWatch
from reflectchat.engine.pieces import PieceDecoder
from reflectchat.engine.placement import check_patterns
from reflectchat.engine.prompt import ChatPrompt, TurnEndWatch, choose_template
from reflectchat.engine.special_marks import SpecialMarks, marker_parts
from reflectchat.engine.thinking_budget import ThinkingWatch
from reflectchat.engine.token_loop import Drafter, Tally, sampled_tokens


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


class LlamaGeneration:
    """One streaming answer: iterate for text pieces, then read `stats`."""

    def __init__(self, engine: LlamaEngine, tokens: list[int], sampling: Sampling,
                 cancel: threading.Event, prefilled: str | None, asked: str = "") -> None:
        """`prefilled`: the thinking opener the prompt ended with; `asked`: the user's last
        prompt (what it asks to repeat is not a loop)."""
        self._engine = engine
        self._asked = asked
        self._tokens = tokens
        self._sampling = sampling
        self._cancel = cancel
        self._prefilled = prefilled
        self.prefilled_thinking = prefilled is not None
        # where the answer's special tokens begin, for the parser (special_marks.py)
        self.special = SpecialMarks(find=engine.marker_parts)
        self._yielded = 0  # characters of answer text yielded so far
        self.stats = GenerationStats(prompt_tokens=len(tokens))
        self._thinking: ThinkingWatch | None = None
        self._closer = ""

    def limit_thinking(self, tag_format: TagFormat, budget: int) -> None:
        """End the thinking after `budget` tokens of it (0: as soon as it opens)."""
        self._thinking = ThinkingWatch(tag_format, self._prefilled)
        self.stats.thinking_budget = budget

    def _out(self, text: str, marks: tuple[int, ...] = ()) -> str:
        """`text` as it is yielded, its special tokens' offsets (`marks`) noted."""
        self.special.starts.update(self._yielded + m for m in marks)
        self._yielded += len(text)
        return text

    def _closer_text(self) -> str:
        """The engine's end of thinking, as it is yielded (its special tokens marked)."""
        return self._out(self._closer, self._engine.marker_parts(self._closer))

    def _close_thinking(self) -> list[int]:
        """The tokens of the family's end of thinking, which the model reads next."""
        assert self._thinking is not None
        self._closer = self._thinking.closer
        self._thinking.closed()
        return self._engine.model.vocab.tokenize(self._closer, special=True)

    def __iter__(self) -> Iterator[str]:
        with self._engine.lock:  # one user of the context at a time (a save waits)
            yield from self._stream()

    def _stream(self) -> Iterator[str]:
        engine, stats, sampling = self._engine, self.stats, self._sampling
        thinking, budget = self._thinking, stats.thinking_budget or 0
        if thinking is not None and thinking.inside and budget == 0:
            self._tokens = self._tokens + self._close_thinking()  # the prompt closes it
            stats.prompt_tokens = len(self._tokens)
            yield self._closer_text()
        room = engine.n_ctx - len(self._tokens)
        if room <= 0:
            stats.finish_reason = FinishReason.ERROR
            stats.error = (f"The conversation is {len(self._tokens):,} tokens, which fills the "
                           f"{engine.n_ctx:,}-token context; start a new chat or raise --ctx")
            return
        limit = min(sampling.max_tokens or room, room)
        model, drafter = engine.model, engine.drafter()
        tally = Tally(stats, drafter.kind) if drafter is not None else None
        loops = LoopWatch(TOKENS, model.vocab.text_of, self._asked) \
            if sampling.stop_loops else None
        stats.prompt_evaluated = len(self._tokens) - model.cached_prefix(self._tokens)
        decoder = PieceDecoder(model.vocab)
        turn_end = TurnEndWatch(engine.prompt.template.end_of_turn)
        is_eog, is_special = model.vocab.is_eog, model.vocab.is_special
        start = time.perf_counter()
        first = None
        stats.finish_reason = FinishReason.LENGTH
        try:
            with model.abort_on(self._cancel) as prompt_done, \
                    engine.draft.abort_on(self._cancel) if engine.draft else nullcontext():
                def sampled(context: list[int], seed: int | None) -> Iterator[int]:
                    return sampled_tokens(model, context, sampling, seed, drafter, tally)

                tokens = sampled(self._tokens, sampling.seed)
                answer: list[int] = []  # the answer's tokens, sampled or written by the engine
                hidden = False  # the demo's recorded thinking going on past the budget
                shown = 0  # tokens not hidden, for the demo's pace
                while True:
                    token = next(tokens, None)
                    if token is None:
                        break
                    if first is None:
                        first = time.perf_counter()
                        prompt_done()
                    if self._cancel.is_set():
                        stats.finish_reason = FinishReason.CANCELLED
                        break
                    if is_eog(token):
                        stats.finish_reason = FinishReason.STOP
                        break
                    stats.completion_tokens += 1
                    answer.append(token)
                    decoded = decoder.decode(token)
                    # a special token's text ends the text it completes
                    special = decoder.piece(token).decode("utf-8", "replace") \
                        if is_special(token) else ""
                    marks = (len(decoded) - len(special),) if special else ()
                    text, marks = turn_end.feed_marked(decoded, marks)
                    if hidden:
                        assert thinking is not None
                        thinking.feed(text)
                        if thinking.inside:
                            if stats.completion_tokens >= limit:
                                break
                            continue
                        # its own end of thinking: shown from there on
                        hidden, text = False, thinking.closer + thinking.rest
                        marks = (len(text) - len(special),) \
                            if special and text.endswith(special) else ()
                    elif thinking is not None:
                        thinking.feed(text)
                        if engine.settings.recording and thinking.inside \
                                and thinking.spent >= budget:
                            # the demo replays a recording, which cannot answer anything but
                            # what it recorded after the engine's closer: its thinking goes
                            # on unseen to its own end, and its answer follows
                            hidden = True
                            text = text[:len(text) - len(thinking.rest)]  # up to the opener
                            marks = tuple(m for m in marks if m < len(text))
                    shown += 1
                    if text:
                        yield self._out(text, marks)
                    if loops is not None and loops.feed(token):
                        stats.finish_reason = FinishReason.LOOP
                        break
                    if thinking is not None and not hidden and thinking.inside \
                            and thinking.spent >= budget:
                        held, marks = turn_end.feed_marked(decoder.flush())
                        rest, more = turn_end.flush_marked()  # all before the closer
                        if held + rest:
                            yield self._out(held + rest,
                                            marks + tuple(len(held) + m for m in more))
                        written = self._close_thinking()
                        stats.completion_tokens += len(written)
                        answer += written
                        yield self._closer_text()
                        # the model reads the closer and samples on after it (llama.cpp
                        # keeps the cache of everything before it)
                        tokens = sampled(self._tokens + answer, None)
                    if engine.settings.pace:  # never faster than pace, from the first token on
                        ahead = first + shown / engine.settings.pace - time.perf_counter()
                        if ahead > 0:
                            time.sleep(ahead)
                    if turn_end.ended:
                        stats.finish_reason = FinishReason.STOP
                        break
                    if stats.completion_tokens >= limit:
                        break
        except RuntimeError as exc:
            if self._cancel.is_set():
                stats.finish_reason = FinishReason.CANCELLED
            else:
                stats.finish_reason = FinishReason.ERROR
                stats.error = f"llama.cpp failed while generating: {exc}"
        if not turn_end.ended:
            held, marks = turn_end.feed_marked(decoder.flush())
            rest, more = turn_end.flush_marked()
            if held + rest:
                yield self._out(held + rest, marks + tuple(len(held) + m for m in more))
        end = time.perf_counter()
        stats.total_s = end - start
        if first is not None:
            stats.time_to_first_token_s = first - start
            if stats.completion_tokens > 1 and end > first:
                stats.tokens_per_second = (stats.completion_tokens - 1) / (end - first)
