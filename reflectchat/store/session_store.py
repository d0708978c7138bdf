"""The session store: one SQLite file in the platformdirs data dir.

WAL mode with `synchronous=FULL`, so each commit survives a killed process (and a power cut),
and readers never block the writer. Every write is one short `BEGIN IMMEDIATE` transaction, and
a busy timeout makes a second process wait its turn instead of failing. The file is 0600 and its
folder 0700: chats are private. A file that is not a readable reflectchat store is moved aside,
never deleted, and a fresh store is started in its place.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
import time
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from reflectchat.engine.base import Sampling
from reflectchat.paths import store_file
from reflectchat.store.records import (
    CHANNELS,
    MARK_END,
    MARK_START,
    SearchHit,
    SessionInfo,
    SessionMeta,
    StoredMessage,
    plain_number,
)
from reflectchat.store.schema import APPLICATION_ID, MIGRATIONS
from reflectchat.untrusted import visible

BUSY_TIMEOUT_S = 10.0
_WHOLE = {"top_k", "max_tokens", "seed"}  # Sampling's whole-number fields
SNIPPET_TOKENS = 16
SNIPPET_CHARS = 120  # of a reflection listed without search words


class StoreError(Exception):
    """The store cannot be used; the message says why and what to do."""


class _Unreadable(Exception):
    """The file is not a readable reflectchat store."""


def fts_query(text: str) -> str | None:
    """The FTS5 query for what a user typed: every word must occur, the last as a prefix (so
    results follow typing). Words are quoted, so no input is an FTS5 syntax error."""
    words = re.findall(r"\w+", text)
    if not words:
        return None
    terms = [f'"{w}"' for w in words]
    terms[-1] += "*"
    return " ".join(terms)


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
            conn = _connect(path)
        except _Unreadable as exc:
            moved = _move_aside(path)
            notice = (f"The session store {path} could not be read ({exc}). It was moved to "
                      f"{moved} and a fresh store was started.")
            try:
                conn = _connect(path)
            except _Unreadable as again:
                raise StoreError(f"Cannot start a fresh session store at {path}: {again}") \
                    from None
        return cls(conn, path, notice)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

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
                       (*_meta_row(meta), session_id))

    def rename(self, session_id: int, title: str) -> None:
        with self._write() as db:
            if db.execute("UPDATE sessions SET title = ? WHERE id = ?",
                          (title, session_id)).rowcount == 0:
                raise StoreError(f"There is no session {session_id}")

    def delete(self, session_id: int) -> None:
        with self._write() as db:
            if db.execute("DELETE FROM sessions WHERE id = ?", (session_id,)).rowcount == 0:
                raise StoreError(f"There is no session {session_id}")

    def sessions(self, limit: int | None = None) -> list[SessionInfo]:
        """Newest (most recently updated) first."""
        with self._lock:
            rows = self._conn.execute(
                f"{_SESSION_SELECT} ORDER BY s.updated DESC, s.id DESC LIMIT ?",
                (-1 if limit is None else limit,),
            ).fetchall()
        return [_session_info(row) for row in rows]

    def session(self, session_id: int) -> SessionInfo:
        with self._lock:
            row = self._conn.execute(f"{_SESSION_SELECT} WHERE s.id = ?",
                                     (session_id,)).fetchone()
        if row is None:
            raise StoreError(f"There is no session {session_id}")
        return _session_info(row)

    # -- messages ---------------------------------------------------------------------------

    def add_messages(self, session_id: int, messages: Sequence[StoredMessage]) -> list[int]:
        """Append messages in one transaction; returns their ids. Sets each one's `seq`."""
        with self._write() as db:
            return _insert_messages(db, session_id, messages)

    def update_message(self, message_id: int, message: StoredMessage) -> None:
        """Replace a message's content (an answer's checkpoint or its final text)."""
        with self._write() as db:
            row = db.execute(
                "UPDATE messages SET raw = ?, thinking = ?, reflections = ?, output = ?, "
                "tag_format = ?, prefilled = ?, finish_reason = ?, stats = ? WHERE id = ? "
                "RETURNING session_id", (*_content_row(message), message_id),
            ).fetchone()
            if row is None:
                return  # deleted meanwhile (the session, by the user or another process)
            db.execute("DELETE FROM texts WHERE message_id = ?", (message_id,))
            _index(db, message_id, message)
            _touch(db, row[0], time.time())

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
        return [_message(row) for row in rows]

    # -- search -----------------------------------------------------------------------------

    def search(self, text: str, channels: Collection[str] = (), limit: int = 100,
               corrected: bool = False) -> list[SearchHit]:
        """Texts matching every word of `text`, most recently saved first, limited to
        `channels` if any are given. Snippets mark each match with MARK_START/MARK_END.
        `corrected`: only in answers where the model corrected itself (with reflections);
        with no words, each such answer's first reflection.
        (Ranking by relevance, bm25, costs 120 ms for a common word in 1,000 sessions;
        newest first costs 1 ms: see docs/benchmarks.md.)"""
        query = fts_query(text)
        unknown = set(channels) - set(CHANNELS)
        if unknown:
            raise ValueError(f"unknown channel(s) {sorted(unknown)}; use {', '.join(CHANNELS)}")
        if query is None:
            return self._corrections(limit) if corrected else []
        query = f"body : ({query})"
        if channels:
            query = f"channel : ({' OR '.join(sorted(channels))}) AND {query}"
        only_corrected = "AND json_array_length(m.reflections) > 0 " if corrected else ""
        with self._lock:
            rows = self._conn.execute(
                "SELECT m.session_id, s.title, s.updated, m.seq, t.channel, t.n, "
                "snippet(texts_fts, 0, ?, ?, '…', ?) FROM texts_fts "
                "JOIN texts t ON t.id = texts_fts.rowid "
                "JOIN messages m ON m.id = t.message_id "
                "JOIN sessions s ON s.id = m.session_id "
                f"WHERE texts_fts MATCH ? {only_corrected}"
                "ORDER BY texts_fts.rowid DESC LIMIT ?",
                (MARK_START, MARK_END, SNIPPET_TOKENS, query, limit),
            ).fetchall()
        return [SearchHit(*row) for row in rows]

    def _corrections(self, limit: int) -> list[SearchHit]:
        """Every answer with reflections, newest first, as a hit on its first reflection."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT m.session_id, s.title, s.updated, m.seq, t.channel, t.n, "
                "substr(t.body, 1, ?) FROM texts t "
                "JOIN messages m ON m.id = t.message_id "
                "JOIN sessions s ON s.id = m.session_id "
                "WHERE t.channel = 'reflection' AND t.n = 1 ORDER BY t.id DESC LIMIT ?",
                (SNIPPET_CHARS, limit),
            ).fetchall()
        return [SearchHit(*row) for row in rows]


# -- opening ----------------------------------------------------------------------------------

def _connect(path: Path) -> sqlite3.Connection:
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    os.chmod(path, 0o600)  # the WAL and shared-memory files take the database file's mode
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                           check_same_thread=False)
    conn.create_function("visible", 1, visible, deterministic=True)
    try:
        (app_id,) = conn.execute("PRAGMA application_id").fetchone()
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        (tables,) = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        if app_id != APPLICATION_ID and (app_id != 0 or tables):
            raise _Unreadable("it is not a reflectchat session store")
        if version > len(MIGRATIONS):
            conn.close()
            raise StoreError(
                f"The session store {path} was written by a newer reflectchat (schema "
                f"{version}; this one knows {len(MIGRATIONS)}). Upgrade reflectchat to use it.")
        (check,) = conn.execute("PRAGMA quick_check").fetchone()
        if check != "ok":
            raise _Unreadable(f"it is damaged: {check}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        _migrate(conn)
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise _Unreadable(str(exc)) from None
    except _Unreadable:
        conn.close()
        raise
    return conn


def _migrate(conn: sqlite3.Connection) -> None:
    """Apply the migrations this file lacks, each in its own transaction. Re-reading the
    version inside the transaction makes two processes opening a new store at once safe."""
    while True:
        conn.execute("BEGIN IMMEDIATE")
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        if version >= len(MIGRATIONS):
            conn.execute("COMMIT")
            return
        try:
            for statement in _statements(MIGRATIONS[version]):
                conn.execute(statement)
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version = {version + 1}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


def _statements(script: str) -> Iterator[str]:
    """Split a migration into statements (executescript would commit our transaction)."""
    statement = ""
    for line in script.splitlines(keepends=True):
        if line.lstrip().startswith("--") and not statement.strip():
            continue
        statement += line
        if sqlite3.complete_statement(statement):
            yield statement
            statement = ""


def _move_aside(path: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.name}.unreadable-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.unreadable-{stamp}-{n}")
    os.replace(path, target)
    for suffix in ("-wal", "-shm"):
        extra = path.with_name(path.name + suffix)
        if extra.exists():
            os.replace(extra, target.with_name(target.name + suffix))
    return target


# -- rows -------------------------------------------------------------------------------------

_SESSION_SELECT = (
    "SELECT s.id, s.title, s.created, s.updated, s.model, s.quant, s.system_prompt, "
    "s.sampling, s.gpu_layers, s.n_ctx, "
    "(SELECT count(*) FROM messages m WHERE m.session_id = s.id) FROM sessions s"
)


def _insert_session(db: sqlite3.Connection, title: str, meta: SessionMeta,
                    created: float | None, updated: float | None) -> int:
    now = time.time()
    cursor = db.execute(
        "INSERT INTO sessions (title, created, updated, model, quant, system_prompt, "
        "sampling, gpu_layers, n_ctx) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (title, created or now, updated or created or now, *_meta_row(meta)),
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
            (session_id, last, message.role, *_content_row(message), message.created),
        )
        assert cursor.lastrowid is not None
        ids.append(cursor.lastrowid)
        _index(db, cursor.lastrowid, message)
    _touch(db, session_id, max((m.created for m in messages), default=time.time()))
    return ids


def _message(row: tuple) -> StoredMessage:
    """A stored message, read defensively: a damaged cell (a changed byte passes SQLite's own
    checks) leaves that field empty and is named in `damaged`, and the rest is shown."""
    (role, raw, thinking, reflections, output, tag_format, prefilled, finish, stats, created,
     seq) = row
    damaged = []
    texts = []
    for name, value in (("raw", raw), ("thinking", thinking), ("output", output)):
        if not isinstance(value, str):
            damaged.append(name)
        texts.append(value if isinstance(value, str) else "")
    kept_reflections = _json_cell(reflections, list)
    if kept_reflections is None or not all(isinstance(r, str) for r in kept_reflections):
        damaged.append("reflections")
        kept_reflections = []
    kept_stats = _json_cell(stats, dict) if stats is not None else None
    if stats is not None and kept_stats is None:
        damaged.append("stats")
    return StoredMessage(
        role if role in ("user", "assistant") else "assistant", texts[0], texts[1],
        kept_reflections, texts[2], tag_format if isinstance(tag_format, str) else None,
        bool(prefilled), finish if isinstance(finish, str) else None, kept_stats,
        created if isinstance(created, int | float) else 0.0, seq, tuple(damaged))


def _json_cell(text: object, kind: type) -> Any:
    """The JSON in a stored cell if it is readable and of `kind`, else None."""
    try:
        value = json.loads(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return value if isinstance(value, kind) else None


def _meta_row(meta: SessionMeta) -> tuple[object, ...]:
    return (meta.model, meta.quant, meta.system_prompt, json.dumps(asdict(meta.sampling)),
            meta.gpu_layers, meta.n_ctx)


def _session_info(row: tuple) -> SessionInfo:
    (id_, title, created, updated, model, quant, system_prompt, sampling, gpu_layers, n_ctx,
     count) = row
    meta = SessionMeta(model, quant, system_prompt, sampling_from_json(sampling), gpu_layers,
                       n_ctx)
    return SessionInfo(id_, title, created, updated, meta, count)


def sampling_from_json(text: str | dict) -> Sampling:
    """Sampling from stored JSON. Unknown keys (from a newer version) are ignored, and a value
    of the wrong type, or a damaged cell, leaves the default."""
    data = (_json_cell(text, dict) if isinstance(text, str) else text) or {}
    kept: dict[str, int | float] = {}
    for name in Sampling.__dataclass_fields__:
        value = data.get(name)
        if not plain_number(value) or (name in _WHOLE and not isinstance(value, int)):
            continue  # None, or not a number this field can take: the default
        kept[name] = value
    return Sampling(**kept)  # type: ignore[arg-type]


def _content_row(m: StoredMessage) -> tuple[object, ...]:
    return (m.raw, m.thinking, json.dumps(m.reflections, ensure_ascii=False), m.output,
            m.tag_format, int(m.prefilled), m.finish_reason,
            json.dumps(m.stats, ensure_ascii=False) if m.stats is not None else None)


def _index(db: sqlite3.Connection, message_id: int, m: StoredMessage) -> None:
    if m.role == "user":
        texts = [("user", 0, m.raw)]
    else:
        texts = [("thinking", 0, m.thinking),
                 *(("reflection", n, r) for n, r in enumerate(m.reflections, 1)),
                 ("output", 0, m.output)]
    db.executemany(
        "INSERT INTO texts (message_id, channel, n, body) VALUES (?, ?, ?, ?)",
        [(message_id, channel, n, visible(body)) for channel, n, body in texts if body.strip()],
    )


def _touch(db: sqlite3.Connection, session_id: int, when: float) -> None:
    db.execute("UPDATE sessions SET updated = max(updated, ?) WHERE id = ?", (when, session_id))
