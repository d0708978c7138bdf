"""One pair's teacher reflection: the instruction reflection and the response reflection, each
an ordinary answer from the teacher (streamed through the same parser as a chat, so its
thinking and reflections show as they come), then the rewrites read from its output. The raw
answers are saved whatever happens; a rewrite missing from them is one clear sentence."""

from __future__ import annotations

import threading
from typing import Any, Protocol

from reflectchat.chat.answer_run import AnswerRun
from reflectchat.chat.conversation import Conversation, Turn
from reflectchat.engine.base import Backend, FinishReason, Sampling, TagFormat
from reflectchat.reflection.events import ChannelEvent
from reflectchat.store.session_store import SessionStore
from reflectchat.store.tune_pairs import StoredPair, save
from reflectchat.tune.teacher import (
    INSTRUCTION_REFLECTION,
    RESPONSE_REFLECTION,
    TeacherFormatError,
    parse_instruction_reflection,
    parse_response_reflection,
)

TEACHER_SAMPLING = Sampling(temperature=0.0)  # as the paper's teacher ran


class View(Protocol):
    """Where the teacher's answer streams (the terminal view of `ask`)."""

    def show(self, event: ChannelEvent, may_be_thinking: bool) -> None: ...


def teacher_answer(engine: Backend, prompt: str, view: View | None,
                   tag_format: TagFormat = TagFormat.AUTO,
                   sampling: Sampling = TEACHER_SAMPLING, system: str = "") -> tuple[str, str]:
    """The teacher's (raw text, output) for `prompt`. With no tagged output (a plain model),
    the output is the whole text."""
    turn = Turn(prompt, tag_format)
    run = AnswerRun(engine, turn, Conversation(system, sampling).messages_for(prompt),
                    sampling, threading.Event())
    for event in run.events():
        if view is not None:
            view.show(event, False)
    if run.stats.finish_reason is FinishReason.ERROR:
        raise TeacherFormatError(f"the teacher failed: {run.stats.error}")
    raw = turn.answer.raw
    return raw, turn.answer.output.strip() or raw


def reflect_pair(engine: Backend, pair: StoredPair, store: SessionStore,
                 view: View | None = None, sampling: Sampling = TEACHER_SAMPLING,
                 system: str = "", tag_format: TagFormat = TagFormat.AUTO,
                 halves: tuple[str, ...] = ("instruction", "response")) -> dict[str, Any]:
    """Run the reflections `halves` names for `pair` (with the teacher's `sampling` and
    `system` prompt) and save what they gave; a half not run keeps what it has."""
    outcome: dict[str, Any] = {"message": pair.message_id, "session": pair.session_id}
    kept = pair.saved.get("teacher_raw")
    raw: dict[str, str] = dict(kept) if isinstance(kept, dict) else {}
    errors = []
    fields: dict[str, Any] = {}
    asks = [(name, template) for name, template in
            (("instruction", INSTRUCTION_REFLECTION), ("response", RESPONSE_REFLECTION))
            if name in halves]
    for name, template in asks:
        prompt = template.format(instruction=pair.prompt, answer=pair.output)
        try:
            raw[name], output = teacher_answer(engine, prompt, view, tag_format, sampling,
                                               system)
            if name == "instruction":
                rewrite = parse_instruction_reflection(output, pair.prompt, pair.output)
                fields.update(new_instruction=rewrite.instruction, new_answer=rewrite.answer,
                              instruction_scores=None)
            else:
                fields.update(better_answer=parse_response_reflection(
                    output, pair.prompt, pair.output), answer_scores=None)
        except TeacherFormatError as exc:
            errors.append(f"{name} reflection: {exc}")
    error = "; ".join(errors) or None
    save(store, pair.message_id, teacher_raw=raw, teacher_error=error, **fields)
    pair.saved.update(teacher_raw=raw, teacher_error=error, **fields)
    outcome.update({k: v for k, v in fields.items() if not k.endswith("_scores")}, error=error)
    return outcome
