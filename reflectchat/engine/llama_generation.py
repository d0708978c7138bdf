"""One streaming answer of the in-process backend: reflectchat's token loop
(engine/token_loop.py) read token by token, so every stop acts at the exact token: the end of
generation or of the turn, the thinking budget (the engine's closer written in), loop
stopping, the answer limit and the context's end; the text yielded with its special tokens'
offsets noted for the parser."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import nullcontext
from typing import TYPE_CHECKING

from reflectchat.engine.base import FinishReason, GenerationStats, Sampling, TagFormat
from reflectchat.engine.loops import TOKENS, LoopWatch
from reflectchat.engine.pieces import PieceDecoder
from reflectchat.engine.prompt import TurnEndWatch
from reflectchat.engine.special_marks import SpecialMarks
from reflectchat.engine.thinking_budget import ThinkingWatch
from reflectchat.engine.token_loop import Tally, sampled_tokens

if TYPE_CHECKING:
    from reflectchat.engine.llama import LlamaEngine


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
