"""The session store: one SQLite file in the platformdirs data dir (`sqlite_file.py` opens it:
private, WAL, `synchronous=FULL`, migrated; an unreadable one is moved aside).

Sessions and their messages are created, read, updated and deleted here; every write is one
short `BEGIN IMMEDIATE` transaction, and a busy timeout makes a second process wait its turn
instead of failing. Rows become records in `rows.py`; texts are indexed and searched in
`search.py`.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from reflectchat.paths import context_state_file, store_file
from reflectchat.store.records import SearchHit, SessionInfo, SessionMeta, StoredMessage
from reflectchat.store.rows import (
    SESSION_SELECT,
    content_row,
    message_from_row,
    meta_row,
    session_info,
)
from reflectchat.store.search import index_texts, search
from reflectchat.store.sqlite_file import StoreError, Unreadable, connect, move_aside


class SessionStore:
    """Thread-safe: the UI thread and the streaming worker share one connection under a lock."""

    def __init__(self, conn: sqlite3.Connection, path: Path, notice: str | None) -> None:
        self._conn = conn
        self._lock = threading.RLock()
        self.path = path
        self.notice = notice  # set when an unreadable file was moved aside

    @classmethod
    def open(cls, path: Path | None = None) -> SessionStore:
        """Open (or create) the store. Raises StoreError if it cannot be used at all."""
        path = path or store_file()
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(path.parent, 0o700)
        except OSError as exc:
            raise StoreError(f"Cannot create the session folder {path.parent}: {exc}") from None
        notice = None
        try:
            conn = connect(path)
        except Unreadable as exc:
            moved = move_aside(path)
            notice = (f"The session store {path} could not be read ({exc}). It was moved to "
                      f"{moved} and a fresh store was started.")
            try:
                conn = connect(path)
            except Unreadable as again:
                raise StoreError(f"Cannot start a fresh session store at {path}: {again}") \
                    from None
        store = cls(conn, path, notice)
        store.index_interrupted()
        return store

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """The connection, for one read of the modules beside this one (the lock held)."""
        with self._lock:
            yield self._conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    # -- sessions ---------------------------------------------------------------------------

    def start_session(self, title: str, meta: SessionMeta,
                      messages: Sequence[StoredMessage]) -> tuple[int, list[int]]:
        """A new session with its first messages, in one transaction: no reader, and no
        process killed in between, ever sees the session without them."""
        with self._write() as db:
            session_id = _insert_session(db, title, meta, None, None)
            return session_id, _insert_messages(db, session_id, messages)

    def import_session(self, title: str, meta: SessionMeta, created: float, updated: float,
                       messages: Sequence[StoredMessage]) -> int:
        """A whole session in one transaction: all of it is stored, or none."""
        with self._write() as db:
            session_id = _insert_session(db, title, meta, created, updated)
            _insert_messages(db, session_id, messages)
            db.execute("UPDATE sessions SET updated = ? WHERE id = ?", (updated, session_id))
            return session_id

    def update_meta(self, session_id: int, meta: SessionMeta) -> None:
        with self._write() as db:
            db.execute("UPDATE sessions SET model = ?, quant = ?, system_prompt = ?, "
                       "sampling = ?, gpu_layers = ?, n_ctx = ? WHERE id = ?",
                       (*meta_row(meta), session_id))

    def rename(self, session_id: int, title: str) -> None:
        with self._write() as db:
            if db.execute("UPDATE sessions SET title = ? WHERE id = ?",
                          (title, session_id)).rowcount == 0:
                raise StoreError(f"There is no session {session_id}")

    def delete(self, session_id: int) -> None:
        """The session, and the model context saved with it (a store of the user's own)."""
        with self._write() as db:
            if db.execute("DELETE FROM sessions WHERE id = ?", (session_id,)).rowcount == 0:
                raise StoreError(f"There is no session {session_id}")
        if self.path == store_file():
            context_state_file(session_id).unlink(missing_ok=True)

    def sessions(self, limit: int | None = None) -> list[SessionInfo]:
        """Newest (most recently updated) first."""
        with self._lock:
            rows = self._conn.execute(
                f"{SESSION_SELECT} ORDER BY s.updated DESC, s.id DESC LIMIT ?",
                (-1 if limit is None else limit,),
            ).fetchall()
        return [session_info(row) for row in rows]

    def session(self, session_id: int) -> SessionInfo:
        with self._lock:
            row = self._conn.execute(f"{SESSION_SELECT} WHERE s.id = ?",
                                     (session_id,)).fetchone()
        if row is None:
            raise StoreError(f"There is no session {session_id}")
        return session_info(row)

    # -- messages ---------------------------------------------------------------------------

    def add_messages(self, session_id: int, messages: Sequence[StoredMessage]) -> list[int]:
        """Append messages in one transaction; returns their ids. Sets each one's `seq`."""
        with self._write() as db:
            return _insert_messages(db, session_id, messages)

    def update_message(self, message_id: int, message: StoredMessage,
                       index: bool = True) -> None:
        """Replace a message's content: a streaming answer's checkpoint (`index` False: its
        texts are indexed for search once, when it ends) or its final text."""
        with self._write() as db:
            row = db.execute(
                "UPDATE messages SET raw = ?, thinking = ?, reflections = ?, output = ?, "
                "tag_format = ?, prefilled = ?, finish_reason = ?, stats = ? WHERE id = ? "
                "RETURNING session_id", (*content_row(message), message_id),
            ).fetchone()
            if row is None:
                return  # deleted meanwhile (the session, by the user or another process)
            if index:
                db.execute("DELETE FROM texts WHERE message_id = ?", (message_id,))
                index_texts(db, message_id, message)
            _touch(db, row[0], time.time())

    def mark_comparison(self, session_id: int, seq: int, choice: str) -> None:
        """Keep which side of a comparison the user marked better ("a", "b" or "tie"), with
        side a's answer (at `seq`) where the session keeps it."""
        with self._write() as db:
            row = db.execute(
                "UPDATE messages SET stats = json_set(stats, '$.compare.choice', ?) "
                "WHERE session_id = ? AND seq = ? AND json_valid(stats) "
                "AND json_extract(stats, '$.compare.side') = 'a' RETURNING session_id",
                (choice, session_id, seq)).fetchone()
            if row is None:
                raise StoreError(f"Session {session_id} no longer holds this comparison")
            _touch(db, session_id, time.time())

    def index_interrupted(self) -> int:
        """Index the answers a killed process left unfinished (checkpoints are not indexed),
        so their text can be searched; how many there were. Every open asks, so the usual
        answer, none, costs one read and no write transaction."""
        with self._lock:
            (any_left,) = self._conn.execute(f"SELECT EXISTS ({_UNINDEXED})").fetchone()
        if not any_left:
            return 0
        with self._write() as db:
            rows = db.execute(_UNINDEXED).fetchall()
            for row in rows:
                index_texts(db, row[0], message_from_row(row[1:]))
        return len(rows)

    def delete_last_turn(self, session_id: int) -> None:
        """Remove the last prompt and what follows it (an answer being regenerated)."""
        with self._write() as db:
            db.execute("DELETE FROM messages WHERE session_id = ?1 AND seq >= (SELECT max(seq) "
                       "FROM messages WHERE session_id = ?1 AND role = 'user')", (session_id,))

    def messages(self, session_id: int) -> list[StoredMessage]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT role, raw, thinking, reflections, output, tag_format, prefilled, "
                "finish_reason, stats, created, seq FROM messages WHERE session_id = ? "
                "ORDER BY seq", (session_id,),
            ).fetchall()
        return [message_from_row(row) for row in rows]

    # -- search -----------------------------------------------------------------------------

    def search(self, text: str, channels: Collection[str] = (), limit: int = 100,
               corrected: bool = False) -> list[SearchHit]:
        """Texts matching every word of `text`, most recently saved first (`search.py`)."""
        with self._lock:
            return search(self._conn, text, channels, limit, corrected)


# answers a killed process left streaming: saved (checkpoints) but never indexed for search
_UNINDEXED = (
    "SELECT id, role, raw, thinking, reflections, output, tag_format, prefilled, "
    "finish_reason, stats, created, seq FROM messages m "
    "WHERE m.role = 'assistant' AND m.finish_reason = 'interrupted' "
    "AND NOT EXISTS (SELECT 1 FROM texts t WHERE t.message_id = m.id)"
)


# -- writing ----------------------------------------------------------------------------------

def _insert_session(db: sqlite3.Connection, title: str, meta: SessionMeta,
                    created: float | None, updated: float | None) -> int:
    now = time.time()
    cursor = db.execute(
        "INSERT INTO sessions (id, title, created, updated, model, quant, system_prompt, "
        "sampling, gpu_layers, n_ctx) VALUES ((SELECT last + 1 FROM session_ids), "
        "?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (title, created or now, updated or created or now, *meta_row(meta)),
    )
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def _insert_messages(db: sqlite3.Connection, session_id: int,
                     messages: Sequence[StoredMessage]) -> list[int]:
    ids = []
    (last,) = db.execute("SELECT coalesce(max(seq), 0) FROM messages WHERE session_id = ?",
                         (session_id,)).fetchone()
    for message in messages:
        last += 1
        message.seq = last
        message.created = message.created or time.time()
        cursor = db.execute(
            "INSERT INTO messages (session_id, seq, role, raw, thinking, reflections, output, "
            "tag_format, prefilled, finish_reason, stats, created) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (session_id, last, message.role, *content_row(message), message.created),
        )
        assert cursor.lastrowid is not None
        ids.append(cursor.lastrowid)
        index_texts(db, cursor.lastrowid, message)
    _touch(db, session_id, max((m.created for m in messages), default=time.time()))
    return ids


def _touch(db: sqlite3.Connection, session_id: int, when: float) -> None:
    db.execute("UPDATE sessions SET updated = max(updated, ?) WHERE id = ?", (when, session_id))
