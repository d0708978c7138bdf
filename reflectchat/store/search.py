"""Full-text search over the session store (SQLite FTS5): every saved text is indexed per
channel (the prompt, the thinking, each reflection, the output) as it is written, shown as the
user would see it (`visible`), and found newest first."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Collection

from reflectchat.store.records import CHANNELS, MARK_END, MARK_START, SearchHit, StoredMessage
from reflectchat.untrusted import visible

SNIPPET_TOKENS = 16
SNIPPET_CHARS = 120  # of a reflection listed without search words


def fts_query(text: str) -> str | None:
    """The FTS5 query for what a user typed: every word must occur, the last as a prefix (so
    results follow typing). Words are quoted, so no input is an FTS5 syntax error."""
    words = re.findall(r"\w+", text)
    if not words:
        return None
    terms = [f'"{w}"' for w in words]
    terms[-1] += "*"
    return " ".join(terms)


# the prompt of the turn a hit is in: its own message for a prompt, else the user's before it
_PROMPT = ("(SELECT u.raw FROM messages u WHERE u.session_id = m.session_id "
           "AND u.role = 'user' AND u.seq <= m.seq ORDER BY u.seq DESC LIMIT 1)")


def search(conn: sqlite3.Connection, text: str, channels: Collection[str] = (),
           limit: int = 100, corrected: bool = False) -> list[SearchHit]:
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
        return corrections(conn, limit) if corrected else []
    query = f"body : ({query})"
    if channels:
        query = f"channel : ({' OR '.join(sorted(channels))}) AND {query}"
    only_corrected = "AND json_array_length(m.reflections) > 0 " if corrected else ""
    rows = conn.execute(
        "SELECT m.session_id, s.title, s.updated, m.seq, t.channel, t.n, "
        "snippet(texts_fts, 0, ?, ?, '…', ?), " + _PROMPT + " FROM texts_fts "
        "JOIN texts t ON t.id = texts_fts.rowid "
        "JOIN messages m ON m.id = t.message_id "
        "JOIN sessions s ON s.id = m.session_id "
        f"WHERE texts_fts MATCH ? {only_corrected}"
        "ORDER BY texts_fts.rowid DESC LIMIT ?",
        (MARK_START, MARK_END, SNIPPET_TOKENS, query, limit),
    ).fetchall()
    return [SearchHit(*row) for row in rows]


def corrections(conn: sqlite3.Connection, limit: int) -> list[SearchHit]:
    """Every answer with reflections, newest first, as a hit on its first reflection."""
    rows = conn.execute(
        "SELECT m.session_id, s.title, s.updated, m.seq, t.channel, t.n, "
        "substr(t.body, 1, ?), " + _PROMPT + " FROM texts t "
        "JOIN messages m ON m.id = t.message_id "
        "JOIN sessions s ON s.id = m.session_id "
        "WHERE t.channel = 'reflection' AND t.n = 1 ORDER BY t.id DESC LIMIT ?",
        (SNIPPET_CHARS, limit),
    ).fetchall()
    return [SearchHit(*row) for row in rows]


def index_texts(db: sqlite3.Connection, message_id: int, m: StoredMessage) -> None:
    """Index a message's texts, each channel (and each reflection) a row of its own."""
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
