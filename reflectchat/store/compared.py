"""The comparisons kept in the session store: each prompt answered by two setups side by side,
with the user's mark, read for the preference dataset and the preference statistics."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from reflectchat.chat.comparison import SIDES, Setup
from reflectchat.store.rows import message_from_row
from reflectchat.store.session_store import SessionStore
from reflectchat.store.turns import compared_side

_COLUMNS = "role, raw, thinking, reflections, output, tag_format, prefilled, finish_reason, " \
    "stats, created, seq"


@dataclass(frozen=True)
class ComparedAnswer:
    setup: Setup
    output: str
    raw: str  # the model's whole text, its reasoning tags and all
    thinking: str
    finish_reason: str | None


@dataclass(frozen=True)
class MarkedComparison:
    session_id: int
    seq: int  # side a's place in its session
    prompt: str
    a: ComparedAnswer
    b: ComparedAnswer
    choice: str | None  # "a", "b", "tie"; None: not marked

    def ranked(self) -> tuple[ComparedAnswer, ComparedAnswer] | None:
        """(chosen, rejected), or None for a tie or an unmarked comparison."""
        if self.choice == "a":
            return self.a, self.b
        if self.choice == "b":
            return self.b, self.a
        return None


def comparisons(store: SessionStore, sessions: Collection[int] = ()) -> list[MarkedComparison]:
    """Every comparison kept in the store (limited to `sessions` if given), oldest first."""
    where = f"AND a.session_id IN ({','.join('?' * len(sessions))})" if sessions else ""
    columns = ", ".join(f"{t}.{c.strip()}" for t in ("a", "b") for c in _COLUMNS.split(","))
    with store.reading() as db:
        rows = db.execute(
            f"SELECT a.session_id, u.raw, {columns} FROM messages a "
            "JOIN messages u ON u.session_id = a.session_id AND u.seq = a.seq - 1 "
            "AND u.role = 'user' "
            "JOIN messages b ON b.session_id = a.session_id AND b.seq = a.seq + 1 "
            "AND b.role = 'assistant' "
            "WHERE a.role = 'assistant' AND json_valid(a.stats) "
            f"AND json_extract(a.stats, '$.compare.side') = 'a' {where} "
            "ORDER BY a.session_id, a.seq", tuple(sessions)).fetchall()
    found = []
    n = len(_COLUMNS.split(","))
    for row in rows:
        a, b = message_from_row(row[2:2 + n]), message_from_row(row[2 + n:])
        side_a, side_b = compared_side(a.stats), compared_side(b.stats)
        if side_a is None or side_b is None or side_a[0] != SIDES[0] or \
                side_b[0] != SIDES[1] or not isinstance(row[1], str):
            continue
        found.append(MarkedComparison(
            row[0], a.seq, row[1],
            ComparedAnswer(side_a[1], a.output, a.raw, a.thinking, a.finish_reason),
            ComparedAnswer(side_b[1], b.output, b.raw, b.thinking, b.finish_reason), side_a[2]))
    return found
