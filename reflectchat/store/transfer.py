"""Sessions out of and into the store: JSON (lossless, for import) and Markdown (for reading)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from reflectchat.chat.transcript import conversation_markdown
from reflectchat.engine.base import EFFORTS, SAMPLING_LIMITS, Sampling
from reflectchat.store.records import SessionInfo, SessionMeta, StoredMessage, plain_number
from reflectchat.store.rows import sampling_from_json
from reflectchat.store.session_store import SessionStore
from reflectchat.store.turns import conversation_from

FORMAT = "reflectchat-session"
MAX_MESSAGES = 100_000  # a million took 968 MB to import and more to resume
LATEST_TIME = 4_102_444_800.0  # 2100-01-01
_STAT_NUMBERS = {"prompt_tokens", "completion_tokens", "time_to_first_token_s",
                 "tokens_per_second", "total_s", "reasoning_tokens", "drafted", "accepted",
                 "speedup"}
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
    sampling = _sampling(settings)
    meta = SessionMeta(
        _text(data, "model", "the export"), _optional(data, "quant", str),
        _text(settings, "system_prompt", "settings"), sampling,
        _whole(settings, "gpu_layers", -1, 100_000), _whole(settings, "n_ctx", 0, 1 << 24),
    )
    found = _field(data, "messages", list, "the export")
    if len(found) > MAX_MESSAGES:
        raise TransferError(f"the export holds {len(found):,} messages; at most "
                            f"{MAX_MESSAGES:,} are imported")
    messages = [_message(m, i) for i, m in enumerate(found)]
    return store.import_session(_text(data, "title", "the export"), meta,
                                _time(data, "created", "the export"),
                                _time(data, "updated", "the export"), messages)


def _message(m: object, i: int) -> StoredMessage:
    where = f"messages[{i}]"
    if not isinstance(m, dict):
        raise TransferError(f"{where} must be an object")
    role = _field(m, "role", str, where)
    if role not in ("user", "assistant"):
        raise TransferError(f"{where}.role must be \"user\" or \"assistant\", not {role!r}")
    reflections = _field(m, "reflections", list, where)
    for n, reflection in enumerate(reflections):
        _text({"r": reflection}, "r", f"{where}.reflections[{n}]")
    stats = _optional(m, "stats", dict)
    for name, value in (stats or {}).items():
        if name in _STAT_NUMBERS and value is not None and not plain_number(value):
            raise TransferError(f"{where}.stats.{name} must be a number, not {value!r}")
    return StoredMessage(
        role, _text(m, "raw", where), _text(m, "thinking", where), reflections,
        _text(m, "output", where), _optional(m, "tag_format", str),
        bool(_field(m, "prefilled", bool, where)), _optional(m, "finish_reason", str),
        stats, _time(m, "created", where),
    )


def _text(data: dict, key: str, where: str) -> str:
    """A string that SQLite can store: no lone surrogates (JSON can carry them)."""
    value = _field(data, key, str, where)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise TransferError(f"{where}: {key!r} holds text that is not valid Unicode (a lone "
                            "surrogate)") from None
    return value


def _time(data: dict, key: str, where: str) -> float:
    value = _field(data, key, (int, float), where)
    if not (plain_number(value) and 0 <= value <= LATEST_TIME):
        raise TransferError(f"{where}: {key!r} is not a time between 1970 and 2100: {value!r}")
    return float(value)


def _whole(data: dict, key: str, low: int, high: int) -> int | None:
    value = _optional(data, key, int)
    if value is not None and not low <= value <= high:
        raise TransferError(f"settings: {key!r} must be between {low} and {high}, not {value}")
    return value


def _sampling(settings: dict) -> Sampling:
    given = _field(settings, "sampling", dict, "settings")
    if given.get("effort") is not None and given["effort"] not in EFFORTS:
        raise TransferError(f"settings.sampling.effort must be one of {', '.join(EFFORTS)}, "
                            f"not {given['effort']!r}")
    for name, value in given.items():
        if name not in SAMPLING_LIMITS or value is None:
            continue
        whole, low, high = SAMPLING_LIMITS[name]
        if not plain_number(value) or (whole and not isinstance(value, int)) \
                or not low <= value <= high:
            raise TransferError(f"settings.sampling.{name} must be "
                                f"{'a whole number' if whole else 'a number'} between {low:g} "
                                f"and {high:g}, not {value!r}")
    return sampling_from_json(given)


def _field(data: dict, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in data:
        raise TransferError(f"{where} has no {key!r}")
    value = data[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise TransferError(f"{where}: {key!r} has the wrong type ({type(value).__name__})")
    return value


def _optional(data: dict, key: str, kind: type) -> Any:
    return None if data.get(key) is None else _field(data, key, kind, "the export")
