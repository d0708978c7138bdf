"""The model catalog: `models.toml` read into typed, validated entries.

A fault is reported with the file, the line of the table that holds it and the key path,
e.g. ``models.toml line 57 (models[1].quants[2]): 'size' must be a positive integer``.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reflectchat.engine.base import FORMAT_NAMES, Sampling, TagFormat
from reflectchat.paths import catalog_file

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class CatalogError(Exception):
    """The catalog file is malformed, or a model or quant is not in it."""


@dataclass(frozen=True)
class Arch:
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    hidden: int
    vocab: int
    ffn: int  # feed-forward size, for the compute buffer (a mixture of experts: the experts a
    #           token uses, times each one's size)
    experts: int = 0  # a mixture of experts: experts in each layer (0: a dense model)
    expert_ffn: int = 0  # and each one's feed-forward size


_MOE_KEYS = ("experts", "expert_ffn")


@dataclass(frozen=True)
class Quant:
    name: str
    files: tuple[str, ...]  # every shard, first shard first
    size: int  # bytes, all files together


@dataclass(frozen=True)
class CatalogModel:
    id: str
    name: str
    repo: str
    format: TagFormat
    system_prompt: str
    context_length: int
    sampling: Sampling
    arch: Arch
    quants: tuple[Quant, ...]
    notes: str = ""
    draft: str = ""  # a catalog model of the same vocabulary that drafts for it (--draft-model)
    role: str = "chat"  # "draft": a small model listed to draft for others, not to chat with

    def quant(self, name: str) -> Quant:
        for q in self.quants:
            if q.name.lower() == name.lower():
                return q
        raise CatalogError(f"{self.id} has no quant '{name}'; choose one of "
                           f"{', '.join(q.name for q in self.quants)}")


@dataclass(frozen=True)
class Catalog:
    models: tuple[CatalogModel, ...]

    def get(self, model_id: str) -> CatalogModel:
        for m in self.models:
            if m.id == model_id.lower():
                return m
        raise CatalogError(f"'{model_id}' is neither a GGUF file nor a catalog model; catalog "
                           f"models: {', '.join(m.id for m in self.models)}")


_SAMPLING_KEYS = {"temperature": float, "top_p": float, "top_k": int, "min_p": float,
                  "repeat_penalty": float}


def load_catalog(path: Path | None = None) -> Catalog:
    path = path or catalog_file()
    text = path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{path.name}: {exc}") from None
    return _Reader(path.name, text).catalog(data)


class _Reader:
    """Validates the parsed TOML, pointing at the line of the table at fault."""

    def __init__(self, filename: str, text: str) -> None:
        self.filename = filename
        lines = text.splitlines()
        self.model_lines = _header_lines(lines, "models")
        self.quant_lines = _header_lines(lines, "models.quants")
        self.quants_before = 0

    def fail(self, where: str, line: int | None, message: str) -> CatalogError:
        at = f" line {line}" if line else ""
        return CatalogError(f"{self.filename}{at} ({where}): {message}")

    def catalog(self, data: dict[str, Any]) -> Catalog:
        models = data.get("models")
        if not isinstance(models, list) or not models:
            raise self.fail("top level", None, "expected one or more [[models]] tables")
        parsed = [self.model(i, m) for i, m in enumerate(models)]
        seen: set[str] = set()
        for i, m in enumerate(parsed):
            if m.id in seen:
                raise self.fail(f"models[{i}]", _at(self.model_lines, i),
                                f"'id' {m.id!r} is used twice")
            seen.add(m.id)
        for i, m in enumerate(parsed):
            if m.draft and (m.draft not in seen or m.draft == m.id):
                raise self.fail(f"models[{i}]", _at(self.model_lines, i),
                                f"'draft' {m.draft!r} is not another model of the catalog")
        return Catalog(tuple(parsed))

    def model(self, i: int, m: dict[str, Any]) -> CatalogModel:
        where, line = f"models[{i}]", _at(self.model_lines, i)
        get = _Getter(self, where, line, m)
        fmt = get.text("format")
        if fmt not in FORMAT_NAMES or fmt == "auto":
            raise self.fail(where, line, f"'format' must be one of "
                            f"{', '.join(FORMAT_NAMES[1:])}, not {fmt!r}")
        sampling_table = get.table("sampling")
        sampling = {}
        for key, value in sampling_table.items():
            kind = _SAMPLING_KEYS.get(key)
            if kind is None or not isinstance(value, (int, float)) or isinstance(value, bool):
                raise self.fail(where, line, f"'sampling.{key}' is not a known number setting "
                                f"({', '.join(_SAMPLING_KEYS)})")
            sampling[key] = kind(value)
        arch_get = _Getter(self, f"{where}.arch", line, get.table("arch"))
        arch = Arch(**{k: arch_get.positive_int(k) for k in Arch.__dataclass_fields__
                       if k not in _MOE_KEYS or k in arch_get.data})
        if (arch.experts > 0) != (arch.expert_ffn > 0):
            raise self.fail(where, line, "'arch' of a mixture of experts needs both 'experts' "
                                         "and 'expert_ffn'")
        quant_tables = m.get("quants")
        if not isinstance(quant_tables, list) or not quant_tables:
            raise self.fail(where, line, "expected one or more [[models.quants]] tables")
        quants = tuple(self.quant(where, j, q) for j, q in enumerate(quant_tables))
        self.quants_before += len(quant_tables)
        return CatalogModel(
            id=get.text("id"), name=get.text("name"), repo=get.repo("repo"),
            format=TagFormat(fmt), system_prompt=get.text("system_prompt", allow_empty=True),
            context_length=get.positive_int("context_length"), sampling=Sampling(**sampling),
            arch=arch, quants=quants, notes=get.optional_str("notes"),
            draft=get.optional_str("draft"), role=self.role(where, line, m),
        )

    def role(self, where: str, line: int | None, m: dict[str, Any]) -> str:
        role = m.get("role", "chat")
        if role not in ("chat", "draft"):
            raise self.fail(where, line, f"'role' must be chat or draft, not {role!r}")
        return str(role)

    def quant(self, model_where: str, j: int, q: Any) -> Quant:
        where = f"{model_where}.quants[{j}]"
        line = _at(self.quant_lines, self.quants_before + j)
        if not isinstance(q, dict):
            raise self.fail(where, line, "expected a table")
        get = _Getter(self, where, line, q)
        files = q.get("files")
        if (not isinstance(files, list) or not files
                or not all(isinstance(f, str) and f.endswith(".gguf") for f in files)):
            raise self.fail(where, line, "'files' must list one or more .gguf file names")
        return Quant(name=get.text("name"), files=tuple(files), size=get.positive_int("size"))


class _Getter:
    def __init__(self, reader: _Reader, where: str, line: int | None, table: dict[str, Any]):
        self.reader, self.where, self.line, self.data = reader, where, line, table

    def _fail(self, message: str) -> CatalogError:
        return self.reader.fail(self.where, self.line, message)

    def text(self, key: str, allow_empty: bool = False) -> str:
        value = self.data.get(key)
        if not isinstance(value, str) or (not value and not allow_empty):
            raise self._fail(f"'{key}' must be a {'' if allow_empty else 'non-empty '}string")
        return value

    def optional_str(self, key: str) -> str:
        return self.text(key, allow_empty=True) if key in self.data else ""

    def repo(self, key: str) -> str:
        value = self.text(key)
        if not re.fullmatch(r"[\w.-]+/[\w.-]+", value):
            raise self._fail(f"'{key}' must look like owner/name, not {value!r}")
        return value

    def positive_int(self, key: str) -> int:
        value = self.data.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise self._fail(f"'{key}' must be a positive integer")
        return value

    def table(self, key: str) -> dict[str, Any]:
        value = self.data.get(key, {})
        if not isinstance(value, dict):
            raise self._fail(f"'{key}' must be a table")
        return value


def _header_lines(lines: list[str], name: str) -> list[int]:
    header = re.compile(rf"^\s*\[\[\s*{re.escape(name)}\s*\]\]")
    return [n for n, line in enumerate(lines, start=1) if header.match(line)]


def _at(lines: list[int], index: int) -> int | None:
    return lines[index] if index < len(lines) else None
