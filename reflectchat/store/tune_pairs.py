"""Selective Reflection-Tuning's records in the session store: every finished (prompt, output)
pair of the saved chats, with its scores, the teacher's rewrites and the user's choice.

A pair is a user message and the assistant message after it; its key is the assistant
message's id, so deleting the session deletes its tuning rows too. Of a prompt answered by two
setups side by side (a comparison), the pair is the answer the user marked better (the first,
unmarked or tied).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from reflectchat.store.session_store import SessionStore
from reflectchat.store.turns import compared_side

# what may be written per pair, and the columns that hold JSON
FIELDS = ("scored_by", "scores", "skipped", "new_instruction", "new_answer",
          "instruction_scores", "better_answer", "answer_scores", "teacher_raw",
          "teacher_error", "choice")
JSON_FIELDS = {"scores", "instruction_scores", "answer_scores", "teacher_raw"}


@dataclass
class StoredPair:
    message_id: int
    session_id: int
    session_title: str
    prompt: str
    output: str
    raw: str  # the whole answer, reasoning tags included
    tag_format: str | None
    prefilled: bool
    saved: dict[str, Any] = field(default_factory=dict)  # the tune_pairs columns, JSON read


def pairs(store: SessionStore, sessions: Collection[int] = (),
          include_cut: bool = False) -> list[StoredPair]:
    """Every finished answer with output and the prompt before it, oldest first, limited to
    `sessions` if given, each (prompt, answer) once; with `include_cut`, answers cut at the
    token limit too; of a comparison, the side the conversation went on with."""
    where = f"AND a.session_id IN ({','.join('?' * len(sessions))})" if sessions else ""
    finished = "('stop', 'length')" if include_cut else "('stop')"
    with store._lock:
        rows = store._conn.execute(
            "SELECT a.id, a.session_id, s.title, u.raw, a.output, a.raw, a.tag_format, "
            "a.prefilled, t.scored_by, t.scores, t.skipped, t.new_instruction, t.new_answer, "
            "t.instruction_scores, t.better_answer, t.answer_scores, t.teacher_raw, "
            "t.teacher_error, t.choice, a.stats, before.stats FROM messages a "
            "JOIN messages u ON u.session_id = a.session_id AND u.role = 'user' AND u.seq = "
            "(SELECT max(seq) FROM messages p WHERE p.session_id = a.session_id "
            "AND p.role = 'user' AND p.seq < a.seq) "
            "LEFT JOIN messages before ON before.session_id = a.session_id "
            "AND before.seq = a.seq - 1 "
            "JOIN sessions s ON s.id = a.session_id "
            "LEFT JOIN tune_pairs t ON t.message_id = a.id "
            f"WHERE a.role = 'assistant' AND a.finish_reason IN {finished} AND a.output != '' "
            f"{where} ORDER BY a.id", tuple(sessions)).fetchall()
    found: dict[tuple[str, str], StoredPair] = {}
    for *row, stats, before in rows:
        if not _goes_on(stats, before):
            continue
        saved = {}
        for name, value in zip(FIELDS, row[8:], strict=True):
            if value is not None:
                saved[name] = _cell(name, value)
        pair = StoredPair(*row[:7], bool(row[7]), saved)
        # a copy of a pair (an imported session, an export imported back) is one pair: the
        # one with the most work saved, else the oldest
        twin = found.get((pair.prompt, pair.raw))
        if twin is None or len(pair.saved) > len(twin.saved):
            found[(pair.prompt, pair.raw)] = pair
    return sorted(found.values(), key=lambda p: p.message_id)


def _goes_on(stats: object, before: object) -> bool:
    """Whether an answer is the one its conversation went on with: an ordinary answer, or of
    a comparison the side marked better (side a's stats, the message `before` side b, hold the
    mark). A stored cell that cannot be read counts as an ordinary answer."""
    side = compared_side(_json(stats) if isinstance(stats, str) else None)
    if side is None:
        return True
    if side[0] == "a":
        return side[2] != "b"
    first = compared_side(_json(before) if isinstance(before, str) else None)
    return first is not None and first[2] == "b"


def left_out(store: SessionStore, sessions: Collection[int] = (),
             include_cut: bool = False) -> dict[str, int]:
    """The answers `pairs` leaves out, counted by why: "cut" (at the token limit), "stopped"
    (by the user, or as a loop), "interrupted", "failed", "no output"."""
    where = f"AND session_id IN ({','.join('?' * len(sessions))})" if sessions else ""
    with store._lock:
        rows = store._conn.execute(
            "SELECT finish_reason, output = '', count(*) FROM messages WHERE role = "
            f"'assistant' {where} GROUP BY 1, 2", tuple(sessions)).fetchall()
    why = {"length": "cut", "cancelled": "stopped", "loop": "stopped", "error": "failed"}
    counts: dict[str, int] = {}
    for finish, empty, count in rows:
        if empty:
            reason = "no output"
        elif finish == "stop" or (finish == "length" and include_cut):
            continue
        else:
            reason = why.get(finish, "interrupted")
        counts[reason] = counts.get(reason, 0) + count
    return counts


def _cell(name: str, value: Any) -> Any:
    """A stored cell as the views may trust it; a damaged one (a hand edit, a torn write)
    reads as missing: the pair is then scored or reflected again, never a crash."""
    if name in JSON_FIELDS:
        value = _json(value) if isinstance(value, str) else None
        if name.endswith("scores"):
            return value if _scores(value) else None
        if name == "teacher_raw":
            return value if isinstance(value, dict) and all(
                isinstance(v, str) for v in value.values()) else None
        return value
    if name == "choice":
        return value if value in ("keep", "drop") else None
    return value if isinstance(value, str) else None


def _scores(value: Any) -> bool:
    """Scores the rule can read: finite, non-negative ifd and rifd."""
    return isinstance(value, dict) and all(
        isinstance(value.get(k), (int, float)) and not isinstance(value.get(k), bool)
        and math.isfinite(value[k]) and value[k] >= 0 for k in ("ifd", "rifd"))


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None  # a damaged cell reads as missing: the pair is scored again


def save(store: SessionStore, message_id: int, **values: Any) -> None:
    """Write some of a pair's columns; the others keep what they hold."""
    unknown = set(values) - set(FIELDS)
    if unknown:
        raise ValueError(f"unknown tune_pairs fields {sorted(unknown)}")
    cells = {k: json.dumps(v) if k in JSON_FIELDS and v is not None else v
             for k, v in values.items()}
    columns = ", ".join(cells)
    updates = ", ".join(f"{k} = excluded.{k}" for k in cells)
    with store._write() as db:
        db.execute(f"INSERT INTO tune_pairs (message_id, updated, {columns}) "
                   f"VALUES (?, ?, {', '.join('?' * len(cells))}) "
                   f"ON CONFLICT (message_id) DO UPDATE SET updated = excluded.updated, "
                   f"{updates}", (message_id, time.time(), *cells.values()))
