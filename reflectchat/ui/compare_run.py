"""Runs a comparison's two answers on a worker thread: how (`compare_mode`), then each side
streamed to its own widget and recorded in the session, as the chat's answers are.

- shared: side B runs on side A's model (another effort or thinking budget): one after the
  other, on the one model loaded;
- at once: a server answers beside the local model (they share no memory or compute);
- beside: a second local model that fits beside the first in the memory plan
  (`models/together.py`) loads while A answers and answers after it: two models decoding at
  once on one machine would each show a speed neither has alone;
- turns: two local models that do not fit together: A answers, A's model is unloaded, B loads
  and answers (A's answer stays on screen), B is unloaded and A's model loaded back."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from textual.message import Message

from reflectchat.chat.comparison import Comparison
from reflectchat.chat.conversation import Turn
from reflectchat.engine.base import Backend, ChatMessage, FinishReason, GenerationStats, Sampling
from reflectchat.engine.errors import EngineError
from reflectchat.models.choice import ModelChoice, context_for
from reflectchat.models.hardware import Hardware
from reflectchat.models.together import fit_together
from reflectchat.store.recorder import SessionRecorder
from reflectchat.ui.answer_worker import answer_fitted
from reflectchat.ui.messages import CompareNote, StreamFinished, TurnSaved
from reflectchat.ui.pane_text import panes


class Mode(Enum):
    SHARED = "shared"
    AT_ONCE = "at once"
    BESIDE = "beside"
    TURNS = "turns"


def compare_mode(a: ModelChoice, b: ModelChoice | None, n_ctx_a: int, n_ctx_b: int | None,
                 hardware: Callable[[], Hardware]) -> tuple[Mode, str]:
    """How the two sides run, and why, in words for the screen (`b` None: on A's model)."""
    if b is None:
        return Mode.SHARED, "both answer on the model loaded, one after the other (B may read " \
            "the prompt from A's cache: its time to first token is then shorter)"
    if a.endpoint is not None and b.endpoint is not None:
        return Mode.AT_ONCE, "two servers answer at the same time"
    if a.endpoint is not None or b.endpoint is not None:
        return Mode.AT_ONCE, "a server answers beside the local model, at the same time"
    together = fit_together(a.path, b.path, n_ctx_a, n_ctx_b or context_for(b), hardware())
    if together.fits:
        return Mode.BESIDE, f"{together.why}: B loads while A answers, and answers after it " \
            "(at once, each would run slower than alone)"
    return Mode.TURNS, f"{together.why}: they answer one after the other, each model loaded " \
        "in turn"


@dataclass
class Side:
    turn: Turn
    sampling: Sampling
    post: Callable[[Message], object]  # the side's widget hears its stream


@dataclass
class CompareJob:
    comparison: Comparison
    sides: tuple[Side, Side]
    messages: list[ChatMessage]
    engine_a: Backend
    load_b: Callable[[Callable[[float], bool]], Backend] | None  # None: B runs on A's engine
    plan: Callable[[], tuple[Mode, str]]  # how the two run, and why (`compare_mode`)
    label_b: str
    cancel: threading.Event
    recorder: SessionRecorder | None
    note: Callable[[Message], object]  # the screen hears how it goes
    tell_chat: Callable[[Message], object]  # the chat hears the session the answers went to
    take_a: Callable[[], Backend | None]  # A's model out of the app, for B's memory (turns)
    reload_a: Callable[[], None]  # and back in


def run_comparison(job: CompareJob) -> None:
    """Both answers, on a worker thread, as the plan says (see the module's note); planning
    reads the machine and the models' headers, so it runs here too."""
    if job.recorder is not None:
        job.recorder.start_comparison(job.comparison)
        job.tell_chat(TurnSaved(job.recorder.session_id))
    mode, how = job.plan()
    job.note(CompareNote(how))
    a, b = job.sides
    if mode is Mode.SHARED:
        _answer(job, a, job.engine_a)
        if not _skipped(job, b):
            job.note(CompareNote("Answer B on the same model …"))
            _answer(job, b, job.engine_a)
    elif mode is Mode.AT_ONCE:
        second = threading.Thread(target=_load_and_answer, args=(job, b), name="answer-b",
                                  daemon=True)
        second.start()
        _answer(job, a, job.engine_a)
        second.join()
    elif mode is Mode.BESIDE:
        loaded: list[Backend | EngineError] = []
        loader = threading.Thread(target=lambda: loaded.append(_load(job)), name="load-b",
                                  daemon=True)
        loader.start()
        _answer(job, a, job.engine_a)
        loader.join()
        _answer_on(job, b, loaded[0])
    else:
        _answer(job, a, job.engine_a)
        if _skipped(job, b):
            return
        job.note(CompareNote(f"Answer A is kept; its model is unloaded to load {job.label_b} "
                             "for answer B."))
        taken = job.take_a()
        if taken is not None:
            taken.close()
        _load_and_answer(job, b)
        job.note(CompareNote("Loading the chat's model back …"))
        job.reload_a()


def _answer(job: CompareJob, side: Side, engine: Backend) -> None:
    answer_fitted(engine, side.turn, side.sampling, job.messages, job.cancel, job.recorder,
                  job.note, side.post)


def _load_and_answer(job: CompareJob, side: Side) -> None:
    _answer_on(job, side, _load(job))


def _load(job: CompareJob) -> Backend | EngineError:
    """Side B's model, loaded (with its progress said), or why it could not be."""
    assert job.load_b is not None
    last = [0.0]

    def progress(fraction: float) -> bool:
        now = time.monotonic()
        if now - last[0] > 0.2 or fraction >= 1.0:
            last[0] = now
            job.note(CompareNote(f"Loading {job.label_b} for answer B: {fraction:.0%}"))
        return not job.cancel.is_set()

    try:
        engine = job.load_b(progress)
    except EngineError as exc:
        return exc
    job.note(CompareNote(f"{job.label_b} is loaded for answer B."))
    return engine


def _answer_on(job: CompareJob, side: Side, engine: Backend | EngineError) -> None:
    """Side B's answer on its own model, which is closed after it."""
    if isinstance(engine, EngineError):
        if _skipped(job, side):  # Esc stopped the load
            return
        _ended(job, side, GenerationStats(finish_reason=FinishReason.ERROR,
                                          error=f"Could not load {job.label_b}: {engine}"))
        return
    try:
        if not _skipped(job, side):
            _answer(job, side, engine)
    finally:
        engine.close()


def _skipped(job: CompareJob, side: Side) -> bool:
    """Esc came before this side began: it ends stopped, with nothing asked of it."""
    if not job.cancel.is_set():
        return False
    _ended(job, side, GenerationStats(finish_reason=FinishReason.CANCELLED))
    return True


def _ended(job: CompareJob, side: Side, stats: GenerationStats) -> None:
    """A side that ends without answering (its model failed to load, or it was stopped
    first): recorded as such, and shown."""
    if job.recorder is not None:
        job.recorder.finish_turn(side.turn, stats)
    side.post(StreamFinished(side.turn, stats, [], panes(side.turn.answer, [])))
