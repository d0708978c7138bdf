"""Keeps one conversation in the store as it happens.

A prompt is committed when it is sent, together with an empty answer marked interrupted. While
the answer streams it is checkpointed at least every `CHECKPOINT_SECONDS`, and when it ends it
is committed with its finish reason and stats. A killed process therefore loses at most the
last half second of one answer. A store failure (a full disk) never stops the chat: `on_error`
hears of it and the next write tries again.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass

from reflectchat.chat.conversation import Turn
from reflectchat.engine.base import GenerationStats
from reflectchat.store.records import SessionMeta, title_for
from reflectchat.store.session_store import SessionStore, StoreError
from reflectchat.store.turns import answer_message, user_message

CHECKPOINT_SECONDS = 0.5


@dataclass
class _Live:
    answer_id: int
    saved_at: float


class SessionRecorder:
    def __init__(self, store: SessionStore, meta: SessionMeta, session_id: int | None = None,
                 on_error: Callable[[str], object] | None = None) -> None:
        self.store = store
        self.meta = meta
        self.session_id = session_id  # None until the first prompt is saved
        self.on_error = on_error
        self._live: dict[int, _Live] = {}  # id(turn) of answers being written

    def _failed(self, exc: Exception) -> None:
        if self.on_error is not None:
            self.on_error(f"Could not save to the session store: {exc}")

    def start_turn(self, turn: Turn) -> None:
        """Commit the prompt and an empty answer, before generation starts."""
        try:
            messages = [user_message(turn), answer_message(turn)]
            if self.session_id is None:
                self.session_id, (_, answer_id) = self.store.start_session(
                    title_for(turn.prompt), self.meta, messages)
            else:
                _, answer_id = self.store.add_messages(self.session_id, messages)
        except (sqlite3.Error, StoreError, OSError) as exc:
            self._failed(exc)
            return
        self._live[id(turn)] = _Live(answer_id, time.monotonic())

    def checkpoint(self, turn: Turn) -> None:
        """Save the streaming answer if the last save is `CHECKPOINT_SECONDS` old."""
        live = self._live.get(id(turn))
        now = time.monotonic()
        if live is None or now - live.saved_at < CHECKPOINT_SECONDS:
            return
        live.saved_at = now
        self._save(live, turn, None)

    def finish_turn(self, turn: Turn, stats: GenerationStats) -> None:
        live = self._live.pop(id(turn), None)
        if live is not None:
            self._save(live, turn, stats)

    def _save(self, live: _Live, turn: Turn, stats: GenerationStats | None) -> None:
        try:
            self.store.update_message(live.answer_id, answer_message(turn, stats))
        except (sqlite3.Error, StoreError, OSError) as exc:
            self._failed(exc)

    def drop_last_turn(self) -> None:
        """Remove the last prompt and its answer (the answer is being regenerated)."""
        if self.session_id is None:
            return
        try:
            self.store.delete_last_turn(self.session_id)
        except (sqlite3.Error, StoreError, OSError) as exc:
            self._failed(exc)

    def update_meta(self, meta: SessionMeta) -> None:
        self.meta = meta
        if self.session_id is None:
            return
        try:
            self.store.update_meta(self.session_id, meta)
        except (sqlite3.Error, StoreError, OSError) as exc:
            self._failed(exc)
