"""The session store's schema, as numbered migrations.

`PRAGMA user_version` holds how many migrations a database has had; opening a store applies the
rest, each in its own transaction. Append new migrations; never edit a released one.
"""

from __future__ import annotations

APPLICATION_ID = 0x52464C43  # "RFLC" in the SQLite header: this file is a reflectchat store

_V1_SESSIONS = """
CREATE TABLE sessions (
    id INTEGER PRIMARY KEY,
    title TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    model TEXT NOT NULL DEFAULT '',
    quant TEXT,
    system_prompt TEXT NOT NULL DEFAULT '',
    sampling TEXT NOT NULL DEFAULT '{}',   -- JSON: the Sampling fields
    gpu_layers INTEGER,
    n_ctx INTEGER
);
CREATE INDEX sessions_by_updated ON sessions (updated DESC);

CREATE TABLE messages (
    id INTEGER PRIMARY KEY,
    session_id INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
    raw TEXT NOT NULL DEFAULT '',           -- the prompt, or the exact model text
    thinking TEXT NOT NULL DEFAULT '',
    reflections TEXT NOT NULL DEFAULT '[]', -- JSON list of strings
    output TEXT NOT NULL DEFAULT '',
    tag_format TEXT,
    prefilled INTEGER NOT NULL DEFAULT 0,
    finish_reason TEXT,                     -- 'interrupted' until the answer finishes
    stats TEXT,                             -- JSON
    created REAL NOT NULL,
    UNIQUE (session_id, seq)
);
"""

# Full-text search: one row per searchable text (a prompt, an answer's thinking, each reflection,
# its output), indexed by FTS5 and kept in step by triggers. Bodies pass through `visible()` (the
# store registers it as an SQL function), so a snippet's highlight marks are the only control
# characters in it.
_V2_SEARCH = """
CREATE TABLE texts (
    id INTEGER PRIMARY KEY,
    message_id INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    channel TEXT NOT NULL CHECK (channel IN ('user', 'thinking', 'reflection', 'output')),
    n INTEGER NOT NULL DEFAULT 0,           -- the reflection's number, from 1; else 0
    body TEXT NOT NULL
);
CREATE INDEX texts_by_message ON texts (message_id);

CREATE VIRTUAL TABLE texts_fts USING fts5 (
    body, channel, content='texts', content_rowid='id', tokenize='unicode61 remove_diacritics 2'
);
CREATE TRIGGER texts_ai AFTER INSERT ON texts BEGIN
    INSERT INTO texts_fts (rowid, body, channel) VALUES (new.id, new.body, new.channel);
END;
CREATE TRIGGER texts_ad AFTER DELETE ON texts BEGIN
    INSERT INTO texts_fts (texts_fts, rowid, body, channel)
    VALUES ('delete', old.id, old.body, old.channel);
END;

INSERT INTO texts (message_id, channel, n, body)
    SELECT id, 'user', 0, visible(raw) FROM messages WHERE role = 'user' AND raw != '';
INSERT INTO texts (message_id, channel, n, body)
    SELECT id, 'thinking', 0, visible(thinking) FROM messages
    WHERE role = 'assistant' AND thinking != '';
INSERT INTO texts (message_id, channel, n, body)
    SELECT m.id, 'reflection', CAST(r.key AS INTEGER) + 1, visible(r.value)
    FROM messages m, json_each(m.reflections) r WHERE m.role = 'assistant' AND r.value != '';
INSERT INTO texts (message_id, channel, n, body)
    SELECT id, 'output', 0, visible(output) FROM messages
    WHERE role = 'assistant' AND output != '';
"""

# Selective Reflection-Tuning: one row per (prompt, answer) pair, keyed by the answer message,
# with its scores, the teacher's rewrites and their scores, and the user's keep/drop choice.
_V3_TUNE = """
CREATE TABLE tune_pairs (
    message_id INTEGER PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
    scored_by TEXT,                 -- the model that scored it (its file name)
    scores TEXT,                    -- JSON: ifd, rifd and the four span losses
    skipped TEXT,                   -- why it was not scored (longer than the context)
    new_instruction TEXT,           -- instruction reflection: the teacher's new pair
    new_answer TEXT,
    instruction_scores TEXT,        -- JSON, as scores, of (new_instruction, new_answer)
    better_answer TEXT,             -- response reflection: the teacher's better answer
    answer_scores TEXT,             -- JSON, of (the original prompt, better_answer)
    teacher_raw TEXT,               -- JSON: the teacher's two answers, exactly as they came
    teacher_error TEXT,             -- why the teacher's answer could not be used
    choice TEXT CHECK (choice IN ('keep', 'drop')),  -- the user's, over the rule
    updated REAL NOT NULL
);
"""

# A session id a user has seen never names another session: SQLite gives a deleted newest id
# again (INTEGER PRIMARY KEY without AUTOINCREMENT), so the highest id ever given is kept here
# and new sessions are numbered after it.
_V4_SESSION_IDS = """
CREATE TABLE session_ids (last INTEGER NOT NULL);
INSERT INTO session_ids (last) SELECT coalesce(max(id), 0) FROM sessions;
CREATE TRIGGER session_ids_ai AFTER INSERT ON sessions BEGIN
    UPDATE session_ids SET last = max(last, new.id);
END;
"""

MIGRATIONS: tuple[str, ...] = (_V1_SESSIONS, _V2_SEARCH, _V3_TUNE, _V4_SESSION_IDS)
