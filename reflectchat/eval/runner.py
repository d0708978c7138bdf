"""Answering an evaluation's items on the same path as `ask` (the backend, the reflection
parser, the stats; the session store only when asked), each (item, setting) pair once.

Settings are interleaved item by item, their order turning from one item to the next, so that
a machine that warms up, throttles or gets busy weighs on every setting alike; models likewise,
block by block of items (one item, unless two models run here must take turns). Over a server,
`parallel` pairs are in flight at once (vLLM, and llama-server started with `--parallel N`,
batch them); results are kept as they come, in whatever order, and checked on the calling
thread.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace

from reflectchat.chat.answer_run import AnswerRun
from reflectchat.chat.conversation import Conversation, Turn
from reflectchat.engine.base import Backend, FinishReason, GenerationStats
from reflectchat.eval.checking import Kind, check
from reflectchat.eval.items import Item
from reflectchat.eval.results import Result
from reflectchat.eval.settings import Setting
from reflectchat.models.choice import ModelChoice
from reflectchat.reflection.corrections import corrections_of
from reflectchat.store.recorder import SessionRecorder

# DeepSeek-R1's model card asks this of math prompts; it suits GSM8K as well
INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."


@dataclass(frozen=True)
class Job:
    item: Item
    setting: Setting
    model: int = 0  # which of the compared models answers


def jobs(items: list[Item], settings: list[Setting], done: set[tuple[int, str, str]],
         models: int = 1, turn: int = 1) -> list[Job]:
    """The (model, item, setting) triples still to answer. Items go in blocks of `turn`; in
    each block every model answers, the models' order turning from block to block; within a
    model's share, item by item, each item's settings in a turned order."""
    pending = []
    for b, start in enumerate(range(0, len(items), turn)):
        order = [(b + m) % models for m in range(models)]
        for model in order:
            for n, item in enumerate(items[start:start + turn], start):
                turned = settings[n % len(settings):] + settings[:n % len(settings)]
                pending += [Job(item, s, model) for s in turned
                            if (model, item.id, s.name) not in done]
    return pending


def prompt_for(item: Item) -> str:
    return f"{item.question}\n\n{INSTRUCTION}"


def _seed(item: Item, seed: int) -> int:
    """Each item's sampling seed: the same on every run, different between items."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{item.id}".encode()).digest()[:4], "big")


Recorder = Callable[[Job, ModelChoice, Backend], SessionRecorder | None]
EngineFor = Callable[[int], tuple[Backend, ModelChoice]]


def answer(engine: Backend, choice: ModelChoice, job: Job, seed: int,
           cancel: threading.Event, recorder: Recorder | None = None,
           ) -> tuple[Turn, GenerationStats]:
    """One pair answered through `AnswerRun`, as `ask` answers."""
    sampling = replace(job.setting.applied(choice.sampling), seed=_seed(job.item, seed))
    prompt = prompt_for(job.item)
    messages = Conversation(choice.system_prompt, sampling).messages_for(prompt)
    turn = Turn(prompt, choice.tag_format)
    saver = recorder(job, choice, engine) if recorder is not None else None
    if saver is not None:
        saver.start_turn(turn)
    run = AnswerRun(engine, turn, messages, sampling, cancel, saver)
    for _ in run.events():
        pass
    turn.stats = run.stats
    return turn, run.stats


def score(kind: Kind, job: Job, turn: Turn, stats: GenerationStats) -> Result:
    """The result of one answer: its output checked, and the claim its thinking held before
    its first reflection checked the same way."""
    answer_ = turn.answer
    verdict = check(kind, job.item.reference, answer_.output)
    found = corrections_of(answer_)
    before = check(kind, job.item.reference, found[0].before) if found else None
    return Result(
        item=job.item.id, setting=job.setting.name, correct=verdict.correct, got=verdict.got,
        reference=job.item.reference, reflections=len(answer_.reflections),
        before=before.got if before else None,
        before_correct=before.correct if before and before.got is not None else None,
        thinking_tokens=answer_.reasoning_tokens, completion_tokens=stats.completion_tokens,
        time_to_output_s=answer_.facts.first_output_s,
        tokens_per_second=stats.tokens_per_second, finish_reason=stats.finish_reason.value,
        error=stats.error, raw=answer_.raw, tag_format=turn.tag_format.value,
        prefilled=turn.prefilled, drafted=stats.drafted, accepted=stats.accepted)


def run_jobs(engine_for: EngineFor, kind: Kind, pending: list[Job], seed: int,
             cancel: threading.Event, parallel: int = 1, recorder: Recorder | None = None,
             ) -> Iterator[tuple[Job, Result]]:
    """Answer `pending`, each job by the engine `engine_for(job.model)` gives (asked on this
    thread, as the job starts), yielding each with its result as it is checked. A pair stopped by
    `cancel` yields nothing (it is answered again on resume); the rest stop being started."""
    def one(job: Job, engine: Backend, choice: ModelChoice) -> tuple[Job, Turn, GenerationStats]:
        return (job, *answer(engine, choice, job, seed, cancel, recorder))

    def result(job: Job, turn: Turn, stats: GenerationStats) -> Result | None:
        if stats.finish_reason is FinishReason.CANCELLED or cancel.is_set():
            return None
        return score(kind, job, turn, stats)

    if parallel <= 1:
        for job in pending:
            if cancel.is_set():
                return
            done = result(*one(job, *engine_for(job.model)))
            if done is not None:
                yield job, done
        return
    queue = iter(pending)
    with ThreadPoolExecutor(parallel, thread_name_prefix="eval") as pool:
        running: set[Future[tuple[Job, Turn, GenerationStats]]] = set()
        while True:
            while len(running) < parallel and not cancel.is_set():
                job = next(queue, None)
                if job is None:
                    break
                running.add(pool.submit(one, job, *engine_for(job.model)))
            if not running:
                return
            finished, running = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                job, turn, stats = future.result()
                done = result(job, turn, stats)
                if done is not None:
                    yield job, done
