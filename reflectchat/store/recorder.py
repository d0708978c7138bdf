"""Keeps one conversation in the store as it happens.

A prompt is committed when it is sent, together with an empty answer marked interrupted. While
the answer streams, a thread of its own checkpoints it every `CHECKPOINT_SECONDS` (the token
loop never waits on the disk), and when it ends it is committed with its finish reason and
stats, and indexed for search. A killed process therefore loses at most the last half second
of one answer (the store indexes such an answer the next time it is opened). A store failure
(a full disk) never stops the chat: `on_error` hears of it and the next write tries again.
"""

from __future__ import annotations

import queue
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from reflectchat.chat.comparison import Comparison
from reflectchat.chat.conversation import Turn
from reflectchat.engine.base import GenerationStats
from reflectchat.store.records import SessionMeta, StoredMessage, title_for
from reflectchat.store.session_store import SessionStore, StoreError
from reflectchat.store.turns import AnswerSnapshot, answer_message, user_message

CHECKPOINT_SECONDS = 0.5


@dataclass
class _Live:
    answer_id: int


class SessionRecorder:
    def __init__(self, store: SessionStore, meta: SessionMeta, session_id: int | None = None,
                 on_error: Callable[[str], object] | None = None) -> None:
        self.store = store
        self.meta = meta
        self.session_id = session_id  # None until the first prompt is saved
        self.on_error = on_error
        self._live: dict[int, _Live] = {}  # id(turn) of answers being written
        self._seqs: list[int] = []  # the places in the session of the messages last started

    def _failed(self, exc: Exception) -> None:
        if self.on_error is not None:
            self.on_error(f"Could not save to the session store: {exc}")

    def start_turn(self, turn: Turn) -> None:
        """Commit the prompt and an empty answer, before generation starts."""
        ids = self._start([user_message(turn), answer_message(turn)], turn.prompt)
        if ids is not None:
            self._live[id(turn)] = _Live(ids[1])

    def start_comparison(self, comparison: Comparison) -> None:
        """Commit the prompt and both sides' empty answers (side a, then b), before either
        starts; each is then saved as it streams, as a turn's answer is."""
        a, b = comparison.sides
        ids = self._start([user_message(a), answer_message(a), answer_message(b)], a.prompt)
        if ids is None or self.session_id is None:
            return
        self._live[id(a)], self._live[id(b)] = _Live(ids[1]), _Live(ids[2])
        comparison.stored_at = (self.session_id, self._seqs[1])

    def mark(self, comparison: Comparison) -> None:
        """Keep the user's mark of a saved comparison (which side was better, or a tie)."""
        if comparison.stored_at is None or comparison.choice is None:
            return
        try:
            self.store.mark_comparison(*comparison.stored_at, comparison.choice)
        except (sqlite3.Error, StoreError, OSError) as exc:
            self._failed(exc)

    def _start(self, messages: list[StoredMessage], prompt: str) -> list[int] | None:
        """Commit a prompt's first messages (in a new session if there is none yet); their
        ids, or None if the store failed (said to `on_error`)."""
        try:
            if self.session_id is not None and not self._still_there(self.session_id):
                gone, self.session_id = self.session_id, None
                if self.on_error is not None:
                    self.on_error(f"Session {gone} was deleted elsewhere; this chat goes on "
                                  "in a new session.")
            if self.session_id is None:
                self.session_id, ids = self.store.start_session(title_for(prompt), self.meta,
                                                                messages)
            else:
                ids = self.store.add_messages(self.session_id, messages)
        except (sqlite3.Error, StoreError, OSError) as exc:
            self._failed(exc)
            return None
        self._seqs = [m.seq for m in messages]
        return ids

    def _still_there(self, session_id: int) -> bool:
        """Whether the session is still in the store (another app or `sessions delete` may
        have removed it)."""
        try:
            self.store.session(session_id)
        except StoreError:
            return False
        return True

    @contextmanager
    def saving(self, turn: Turn) -> Iterator[Callable[[], None]]:
        """While this runs (the answer streams), checkpoint it every `CHECKPOINT_SECONDS`. The
        streaming thread calls the yielded function between events: when a checkpoint is due
        it hands over a snapshot (references, no copying), and a thread of its own writes it."""
        live = self._live.get(id(turn))
        if live is None:
            yield lambda: None
            return
        due, stop = threading.Event(), threading.Event()
        handed: queue.Queue[AnswerSnapshot | None] = queue.Queue()  # None: the answer ended

        def offer() -> None:
            if due.is_set():
                due.clear()
                handed.put(AnswerSnapshot.of(turn))

        def checkpoints() -> None:
            while not stop.wait(CHECKPOINT_SECONDS):
                due.set()
                snapshot = handed.get()
                if snapshot is None:
                    return
                self._write(live, snapshot.message(), index=False)

        saver = threading.Thread(target=checkpoints, name="checkpoints", daemon=True)
        saver.start()
        try:
            yield offer
        finally:
            stop.set()
            handed.put(None)
            saver.join()

    def finish_turn(self, turn: Turn, stats: GenerationStats) -> None:
        live = self._live.pop(id(turn), None)
        if live is not None:
            self._write(live, answer_message(turn, stats), index=True)

    def _write(self, live: _Live, message: StoredMessage, index: bool) -> None:
        try:
            self.store.update_message(live.answer_id, message, index)
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
