"""`reflectchat` with no command: open the app on the chosen model."""

from __future__ import annotations

import argparse
from argparse import ArgumentTypeError
from collections.abc import Callable

from reflectchat.chat.conversation import Conversation
from reflectchat.cli.args import check_args, choice_from_args, make_engine, with_answer_options
from reflectchat.cli.output import EXIT_FAILED, EXIT_OK, fail
from reflectchat.cli.parser import SESSION_ID
from reflectchat.engine.base import Backend, Runtime
from reflectchat.engine.errors import EngineError
from reflectchat.models.catalog import CatalogError
from reflectchat.models.choice import ModelChoice
from reflectchat.store.records import SessionMeta
from reflectchat.store.session_store import SessionStore, StoreError
from reflectchat.store.turns import conversation_from


def run(args: argparse.Namespace) -> int:
    def choose(model: str | None, quant: str | None) -> ModelChoice:
        """The model picker offers local models: the demo and the catalog's quants."""
        local = argparse.Namespace(**{**vars(args), "endpoint": None})
        return choice_from_args(local, model, quant, demo=model is None)

    def engine_for(choice: ModelChoice, progress: Callable[[float], bool],
                   runtime: Runtime) -> Backend:
        with_runtime = argparse.Namespace(**{**vars(args), "ctx": runtime.n_ctx,
                                             "threads": runtime.n_threads,
                                             "gpu_layers": runtime.gpu_layers,
                                             "n_cpu_moe": runtime.experts_in_ram})
        return make_engine(with_runtime, choice, progress, paced=True)

    try:
        choice = with_answer_options(args, choice_from_args(args, args.model, args.quant,
                                                            args.demo))
        check_args(args, choice)
    except (CatalogError, EngineError) as exc:
        return fail(exc)
    store, problem = _open_store()
    conversation, session_id = None, None
    if args.resume is not None:
        try:
            conversation, session_id, meta = _resumed(store, problem, args.resume)
        except StoreError as exc:
            return fail(exc)
        if not (args.model or args.demo or args.endpoint) and meta.model not in ("", "demo"):
            try:  # the model the session used, if it is still here
                used = choice_from_args(args, meta.model, meta.quant)
                if not used.path.exists():
                    raise EngineError(f"{used.path} is gone")
                choice = used
            except (CatalogError, EngineError) as exc:
                fail(f"the session's model is not available ({exc}); using {choice.label}")
    from reflectchat.ui.app import ReflectChatApp

    app = ReflectChatApp(choice, engine_for, conversation, choose=choose, store=store,
                         store_problem=problem, session_id=session_id,
                         runtime=Runtime(args.ctx, args.threads, args.gpu_layers,
                                         args.n_cpu_moe))
    app.run()
    return EXIT_FAILED if app.return_code else EXIT_OK  # a crash is a failure to the shell


def _open_store() -> tuple[SessionStore | None, str | None]:
    """The session store, or None and why: the app then runs without history."""
    try:
        return SessionStore.open(), None
    except StoreError as exc:
        return None, str(exc)


def _resumed(store: SessionStore | None, problem: str | None,
             which: str) -> tuple[Conversation, int, SessionMeta]:
    """The conversation of session `which` (an id, or "latest")."""
    if store is None:
        raise StoreError(f"cannot resume: {problem}")
    if which == "latest":
        newest = store.sessions(limit=1)
        if not newest:
            raise StoreError("there is no session to resume yet")
        session_id = newest[0].id
    else:
        try:
            session_id = SESSION_ID(which)
        except ArgumentTypeError:
            raise StoreError(f"--resume takes a session id (see `reflectchat sessions list`), "
                             f"not {which[:20]!r}") from None
    info = store.session(session_id)
    return conversation_from(info, store.messages(session_id)), session_id, info.meta
