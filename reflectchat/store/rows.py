"""Rows of the session store to records and back, read defensively: a damaged cell (a changed
byte passes SQLite's own checks) leaves that field empty and is named, and the rest is shown."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from reflectchat.engine.base import EFFORTS, SAMPLING_LIMITS, Sampling
from reflectchat.store.records import SessionInfo, SessionMeta, StoredMessage, plain_number

_WHOLE = {"top_k", "max_tokens", "seed", "thinking_budget"}  # Sampling's whole-number fields
SESSION_SELECT = (
    "SELECT s.id, s.title, s.created, s.updated, s.model, s.quant, s.system_prompt, "
    "s.sampling, s.gpu_layers, s.n_ctx, "
    "(SELECT count(*) FROM messages m WHERE m.session_id = s.id) FROM sessions s"
)


def message_from_row(row: tuple) -> StoredMessage:
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


def meta_row(meta: SessionMeta) -> tuple[object, ...]:
    return (meta.model, meta.quant, meta.system_prompt, json.dumps(asdict(meta.sampling)),
            meta.gpu_layers, meta.n_ctx)


def session_info(row: tuple) -> SessionInfo:
    (id_, title, created, updated, model, quant, system_prompt, sampling, gpu_layers, n_ctx,
     count) = row
    meta = SessionMeta(model, quant, system_prompt, sampling_from_json(sampling), gpu_layers,
                       n_ctx)
    return SessionInfo(id_, title, created, updated, meta, count)


def sampling_from_json(text: str | dict) -> Sampling:
    """Sampling from stored JSON. Unknown keys (from a newer version) are ignored, and a value
    of the wrong type, or a damaged cell, leaves the default."""
    data = (_json_cell(text, dict) if isinstance(text, str) else text) or {}
    kept: dict[str, int | float | str | bool] = {}
    if data.get("effort") in EFFORTS:
        kept["effort"] = data["effort"]
    if isinstance(data.get("stop_loops"), bool):
        kept["stop_loops"] = data["stop_loops"]
    for name in SAMPLING_LIMITS:
        value = data.get(name)
        if not plain_number(value) or (name in _WHOLE and not isinstance(value, int)):
            continue  # None, or not a number this field can take: the default
        kept[name] = value
    return Sampling(**kept)  # type: ignore[arg-type]


def content_row(m: StoredMessage) -> tuple[object, ...]:
    return (m.raw, m.thinking, json.dumps(m.reflections, ensure_ascii=False), m.output,
            m.tag_format, int(m.prefilled), m.finish_reason,
            json.dumps(m.stats, ensure_ascii=False) if m.stats is not None else None)
