"""Sessions out of and into the store: JSON (lossless, for import) and Markdown (for reading)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from reflectchat.chat.transcript import conversation_markdown
from reflectchat.store.records import SessionInfo, SessionMeta, StoredMessage
from reflectchat.store.session_store import SessionStore, sampling_from_json
from reflectchat.store.turns import conversation_from

FORMAT = "reflectchat-session"
VERSION = 1


class TransferError(Exception):
    """A file that is not a session export this version can read; says what is wrong."""


def model_label(meta: SessionMeta) -> str:
    return " ".join(x for x in (meta.model, meta.quant) if x) or "unknown model"


def session_markdown(info: SessionInfo, messages: list[StoredMessage]) -> str:
    return conversation_markdown(conversation_from(info, messages), info.title,
                                 model_label(info.meta))


def session_json(info: SessionInfo, messages: list[StoredMessage]) -> dict[str, Any]:
    meta = info.meta
    return {
        "format": FORMAT,
        "version": VERSION,
        "title": info.title,
        "created": info.created,
        "updated": info.updated,
        "model": meta.model,
        "quant": meta.quant,
        "settings": {"system_prompt": meta.system_prompt, "sampling": asdict(meta.sampling),
                     "gpu_layers": meta.gpu_layers, "n_ctx": meta.n_ctx},
        "messages": [{k: v for k, v in asdict(m).items() if k != "damaged"} for m in messages],
    }


def import_session(store: SessionStore, data: object) -> int:
    """Add an exported session to the store as a new session; returns its id."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise TransferError(f"not a reflectchat session export (no \"format\": \"{FORMAT}\")")
    if not isinstance(data.get("version"), int) or data["version"] > VERSION:
        raise TransferError(f"export version {data.get('version')!r} is newer than this "
                            f"reflectchat reads ({VERSION}); upgrade reflectchat")
    settings = _field(data, "settings", dict, "the export")
    try:
        sampling = sampling_from_json(_field(settings, "sampling", dict, "settings"))
    except TypeError as exc:
        raise TransferError(f"settings.sampling: {exc}") from None
    meta = SessionMeta(
        _field(data, "model", str, "the export"), _optional(data, "quant", str),
        _field(settings, "system_prompt", str, "settings"), sampling,
        _optional(settings, "gpu_layers", int), _optional(settings, "n_ctx", int),
    )
    messages = [_message(m, i) for i, m in enumerate(_field(data, "messages", list, "the export"))]
    created = _field(data, "created", (int, float), "the export")
    session_id = store.create_session(_field(data, "title", str, "the export"), meta, created,
                                      _field(data, "updated", (int, float), "the export"))
    store.add_messages(session_id, messages)
    return session_id


def _message(m: object, i: int) -> StoredMessage:
    where = f"messages[{i}]"
    if not isinstance(m, dict):
        raise TransferError(f"{where} must be an object")
    role = _field(m, "role", str, where)
    if role not in ("user", "assistant"):
        raise TransferError(f"{where}.role must be \"user\" or \"assistant\", not {role!r}")
    reflections = _field(m, "reflections", list, where)
    if not all(isinstance(r, str) for r in reflections):
        raise TransferError(f"{where}.reflections must be a list of strings")
    return StoredMessage(
        role, _field(m, "raw", str, where), _field(m, "thinking", str, where), reflections,
        _field(m, "output", str, where), _optional(m, "tag_format", str),
        bool(_field(m, "prefilled", bool, where)), _optional(m, "finish_reason", str),
        _optional(m, "stats", dict), float(_field(m, "created", (int, float), where)),
    )


def _field(data: dict, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in data:
        raise TransferError(f"{where} has no {key!r}")
    value = data[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise TransferError(f"{where}: {key!r} has the wrong type ({type(value).__name__})")
    return value


def _optional(data: dict, key: str, kind: type) -> Any:
    return None if data.get(key) is None else _field(data, key, kind, "the export")
