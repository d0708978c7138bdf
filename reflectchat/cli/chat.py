"""`reflectchat` with no command: open the app on the chosen model."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from reflectchat.cli.args import (
    check_args,
    choice_from_args,
    make_engine,
    runtime_of,
    with_answer_options,
    with_runtime,
)
from reflectchat.cli.output import EXIT_FAILED, EXIT_OK, fail
from reflectchat.cli.resuming import open_store, resumed, session_choice
from reflectchat.engine.base import Backend, Runtime
from reflectchat.engine.errors import EngineError
from reflectchat.models.catalog import CatalogError
from reflectchat.models.choice import ModelChoice
from reflectchat.store.session_store import StoreError


def run(args: argparse.Namespace) -> int:
    def choose(model: str | None, quant: str | None) -> ModelChoice:
        """The model picker offers local models: the demo and the catalog's quants."""
        local = argparse.Namespace(**{**vars(args), "endpoint": None})
        return choice_from_args(local, model, quant, demo=model is None)

    def engine_for(choice: ModelChoice, progress: Callable[[float], bool],
                   runtime: Runtime) -> Backend:
        return make_engine(with_runtime(args, runtime), choice, progress, paced=True)

    try:
        choice = with_answer_options(args, choice_from_args(args, args.model, args.quant,
                                                            args.demo))
        check_args(args, choice)
    except (CatalogError, EngineError) as exc:
        return fail(exc)
    store, problem = open_store()
    conversation, session_id = None, None
    if args.resume is not None:
        try:
            conversation, session_id, meta = resumed(store, problem, args.resume)
        except StoreError as exc:
            return fail(exc)
        choice = session_choice(args, meta, choice)
    from reflectchat.ui.app import ReflectChatApp

    app = ReflectChatApp(choice, engine_for, conversation, choose=choose, store=store,
                         store_problem=problem, session_id=session_id,
                         runtime=runtime_of(args))
    app.run()
    return EXIT_FAILED if app.return_code else EXIT_OK  # a crash is a failure to the shell
