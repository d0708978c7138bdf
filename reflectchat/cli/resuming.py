"""Continuing a saved session: `reflectchat --resume` (the app) and `ask --session` (the CLI)."""

from __future__ import annotations

import argparse
from argparse import ArgumentTypeError

from reflectchat.chat.conversation import Conversation
from reflectchat.cli.args import choice_from_args
from reflectchat.cli.option_values import SESSION_ID
from reflectchat.cli.output import fail
from reflectchat.engine.errors import EngineError
from reflectchat.models.catalog import CatalogError
from reflectchat.models.choice import ModelChoice
from reflectchat.store.records import SessionMeta
from reflectchat.store.session_store import SessionStore, StoreError
from reflectchat.store.turns import conversation_from


def open_store() -> tuple[SessionStore | None, str | None]:
    """The session store, or None and why: the app then runs without history."""
    try:
        return SessionStore.open(), None
    except StoreError as exc:
        return None, str(exc)


def resumed(store: SessionStore | None, problem: str | None,
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


def session_choice(args: argparse.Namespace, meta: SessionMeta,
                   choice: ModelChoice) -> ModelChoice:
    """The model the session used, if it is still here and no model was named; else
    `choice`, with a word on why."""
    if (args.model or args.demo or args.endpoint) or meta.model in ("", "demo"):
        return choice
    try:
        used = choice_from_args(args, meta.model, meta.quant)
        if not used.path.exists():
            raise EngineError(f"{used.path} is gone")
        return used
    except (CatalogError, EngineError) as exc:
        fail(f"the session's model is not available ({exc}); using {choice.label}")
        return choice
