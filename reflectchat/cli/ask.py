"""`reflectchat ask`: one question, streamed to the terminal or returned as JSON, and saved as a
session (as command-line LLM tools log every prompt) unless `--no-save`."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from reflectchat.chat.answer_run import AnswerRun
from reflectchat.chat.conversation import Conversation, Turn
from reflectchat.cli.args import check_args, choice_from_args, make_engine, with_answer_options
from reflectchat.cli.output import EXIT_CANCELLED, EXIT_FAILED, EXIT_OK, fail
from reflectchat.cli.resuming import open_store, resumed, session_choice
from reflectchat.config import ConfigFile
from reflectchat.engine import saved_context
from reflectchat.engine.base import Backend, FinishReason, TagFormat
from reflectchat.engine.errors import EngineError
from reflectchat.models.catalog import CatalogError
from reflectchat.models.choice import settled_choice
from reflectchat.models.loading import measure_answer
from reflectchat.reflection.dialects import dialect
from reflectchat.store.recorder import SessionRecorder
from reflectchat.store.records import SessionMeta
from reflectchat.store.session_store import SessionStore, StoreError
from reflectchat.untrusted import visible


@contextmanager
def ctrl_c_stops(cancel: threading.Event) -> Iterator[None]:
    """The first Ctrl+C stops generation cleanly; a second one interrupts as usual."""
    def stop(_signum: int, _frame: object) -> None:
        cancel.set()
        signal.signal(signal.SIGINT, previous)

    previous = signal.signal(signal.SIGINT, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _recorder(args: argparse.Namespace, meta: SessionMeta,
              going_on: tuple[SessionStore, int] | None) -> SessionRecorder | None:
    """The recorder `ask` saves through (into the session `going_on` is, with --session);
    None with --no-save or when the store is unusable (the answer still comes, with a
    warning)."""
    if args.no_save:
        return None
    warned: list[str] = []

    def warn(text: str) -> None:
        if not warned:  # once: a full disk would otherwise warn at every checkpoint
            warned.append(text)
            print(f"reflectchat: {visible(text)}", file=sys.stderr)

    if going_on is not None:
        store, session_id = going_on
        return SessionRecorder(store, meta, session_id, on_error=warn)
    try:
        store = SessionStore.open()
    except StoreError as exc:
        warn(f"{exc}; this answer is not saved")
        return None
    if store.notice:
        warn(store.notice)
    return SessionRecorder(store, meta, on_error=warn)


def _restored(engine: Backend, session_id: int) -> dict[str, object]:
    """The session's saved context put back into a model run here (said on stderr), and
    what `--json` reports of it."""
    done = saved_context.resume(engine, session_id)
    print(f"reflectchat: {saved_context.resumed_text(done)}", file=sys.stderr)
    return done


def _going_on(args: argparse.Namespace) -> tuple[Conversation, SessionMeta, SessionStore, int]:
    """The session --session or --continue names, and its conversation so far."""
    store, problem = open_store()
    which = "latest" if args.continue_latest else str(args.session)
    conversation, session_id, meta = resumed(store, problem, which)
    assert store is not None  # resumed() raised otherwise
    return conversation, meta, store, session_id


def run(args: argparse.Namespace) -> int:
    prompt = args.prompt if args.prompt is not None else sys.stdin.read()
    if not prompt.strip():
        return fail("no prompt given (pass it as an argument or on stdin)")
    view = None
    if not args.json:
        from reflectchat.cli.ask_view import TerminalView
        from reflectchat.cli.console import CommandConsole

        view = TerminalView(CommandConsole(highlight=False),
                            CommandConsole(stderr=True, highlight=False))
    previous: tuple[Conversation, SessionMeta, SessionStore, int] | None = None
    try:
        choice = with_answer_options(args, choice_from_args(args, args.model, args.quant,
                                                            args.demo))
        if args.session is not None or args.continue_latest:
            previous = _going_on(args)
            choice = with_answer_options(args, session_choice(args, previous[1], choice))
        if view:
            view.banner(choice.label, choice.is_demo)
        check_args(args, choice)
        engine = make_engine(args, choice)
        choice = settled_choice(choice, engine)
        if engine.load_note:
            print(f"reflectchat: {engine.load_note}", file=sys.stderr)
        print(f"reflectchat: {visible(choice.reading)}", file=sys.stderr)
    except (EngineError, CatalogError, StoreError) as exc:
        return fail(exc)
    sampling = choice.sampling
    if previous is not None:  # the conversation so far, and its system prompt
        conversation, system = previous[0], previous[0].system_prompt
    else:
        system = choice.system_prompt
        conversation = Conversation(system, sampling)
    turn = Turn(prompt, choice.tag_format)
    recorder = _recorder(args, SessionMeta(choice.model_id, choice.quant, system, sampling,
                                           engine.gpu_layers, engine.n_ctx),
                         (previous[2], previous[3]) if previous is not None else None)
    if recorder is not None:
        recorder.start_turn(turn)
    context = _restored(engine, previous[3]) if previous is not None else None
    cancel = threading.Event()
    answering = AnswerRun(engine, turn, conversation.messages_for(prompt), sampling, cancel,
                          recorder)
    with ctrl_c_stops(cancel):
        for event in answering.events():
            if view:
                view.show(event, turn.tag_format != TagFormat.AUTO and not turn.prefilled
                          and bool(dialect(turn.tag_format).unopened))
    stats = answering.stats
    measure_answer(engine, stats)
    session = recorder.session_id if recorder is not None else None
    if session is not None:  # for the next turn (`ask --session`), within the disk budget
        try:
            saved_context.keep(engine, session, ConfigFile().context_budget())
        except saved_context.ContextNotSaved as exc:
            print(f"reflectchat: {exc}", file=sys.stderr)
    if view:
        view.finish(stats, sampling.max_tokens, turn.answer.facts)
        if session is not None:
            view.saved(session)
    else:
        result = turn.answer.to_dict(stats.finish_reason.value, stats.to_dict())
        print(json.dumps({**result, "session": session, **({"context_restored": context}
                                                            if context is not None else {})},
                         ensure_ascii=False, indent=2))
    if stats.error:
        fail(stats.error)
    if stats.finish_reason is FinishReason.ERROR:
        return EXIT_FAILED
    return EXIT_CANCELLED if stats.finish_reason is FinishReason.CANCELLED else EXIT_OK
