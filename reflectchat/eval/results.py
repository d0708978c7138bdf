"""Each item's result, kept as it comes in a JSON Lines file of its own run in the data dir,
so that a stopped or killed evaluation resumes where it stopped. A line torn by a kill, or
damaged later, is skipped (its item is answered again); nothing else is lost."""

from __future__ import annotations

import json
import math
import os
import stat
from dataclasses import MISSING, asdict, dataclass, fields
from pathlib import Path
from typing import Any

from reflectchat.paths import data_dir


@dataclass(frozen=True)
class Result:
    item: str
    setting: str
    correct: bool
    got: str | None  # the answer read from the output
    reference: str
    reflections: int
    before: str | None  # the answer the thinking held before its first reflection
    before_correct: bool | None  # None: no reflection, or no answer readable before it
    thinking_tokens: int
    completion_tokens: int
    time_to_output_s: float | None
    tokens_per_second: float | None
    finish_reason: str
    error: str | None
    raw: str  # the model's whole text, to open the item's panes again
    tag_format: str
    prefilled: bool = False
    drafted: int | None = None  # tokens speculation drafted (None: no speculation)
    accepted: int | None = None  # of them, the tokens the model kept

    @property
    def scored(self) -> bool:
        """An answer that failed (the engine, the server) is not a wrong answer."""
        return self.error is None

    @classmethod
    def from_dict(cls, data: Any) -> Result | None:
        """The result a stored line holds; None if it is not one (a field missing, or of
        another type)."""
        if not isinstance(data, dict):
            return None
        values = {}
        for f in fields(cls):
            if f.name not in data:
                if f.default is MISSING:
                    return None
                continue
            if not _of_type(data[f.name], _RESULT_TYPES[f.name]):
                return None
            values[f.name] = data[f.name]
        return cls(**values)


_RESULT_TYPES: dict[str, tuple[type, ...]] = {
    "item": (str,), "setting": (str,), "correct": (bool,), "got": (str, type(None)),
    "reference": (str,), "reflections": (int,), "before": (str, type(None)),
    "before_correct": (bool, type(None)), "thinking_tokens": (int,),
    "completion_tokens": (int,), "time_to_output_s": (float, int, type(None)),
    "tokens_per_second": (float, int, type(None)), "finish_reason": (str,),
    "error": (str, type(None)), "raw": (str,), "tag_format": (str,), "prefilled": (bool,),
    "drafted": (int, type(None)), "accepted": (int, type(None)),
}


def _of_type(value: Any, types: tuple[type, ...]) -> bool:
    """`value` is one of `types`: a count is a whole number 0 or more (not a bool), a time
    or a speed a finite number 0 or more."""
    if isinstance(value, bool):
        return bool in types
    if isinstance(value, int):
        return int in types and value >= 0
    if isinstance(value, float):
        return float in types and math.isfinite(value) and value >= 0
    return isinstance(value, types)


def results_dir() -> Path:
    return data_dir() / "eval"


def results_file(run_key: str) -> Path:
    return results_dir() / f"{run_key}.jsonl"


@dataclass(frozen=True)
class RunInfo:
    """What a results file is of, kept beside it (`<key>.json`) for the app's Eval view."""

    title: str
    model: str
    settings: list[str]
    items: int
    kind: str
    started: float

    @classmethod
    def from_dict(cls, data: Any) -> RunInfo | None:
        if not isinstance(data, dict):
            return None
        try:
            info = cls(**{f.name: data[f.name] for f in fields(cls)})
        except (KeyError, TypeError):
            return None
        ok = (isinstance(info.title, str) and isinstance(info.model, str)
              and isinstance(info.settings, list)
              and all(isinstance(s, str) for s in info.settings)
              and _of_type(info.items, (int,)) and isinstance(info.kind, str)
              and _of_type(info.started, (float, int)))
        return info if ok else None


class ResultsFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.skipped = 0  # damaged lines the last `read` passed over

    @property
    def info_path(self) -> Path:
        return self.path.with_suffix(".json")

    def info(self) -> RunInfo | None:
        text = _read_regular(self.info_path)
        try:
            return RunInfo.from_dict(json.loads(text)) if text is not None else None
        except (ValueError, RecursionError):  # torn, or nested deeper than Python reads
            return None

    def describe(self, info: RunInfo) -> None:
        """Keep what the run is of (settings added by a later run are merged in)."""
        earlier = self.info()
        if earlier is not None:
            settings = earlier.settings + [s for s in info.settings
                                           if s not in earlier.settings]
            info = RunInfo(info.title, info.model, settings, info.items, info.kind,
                           earlier.started)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.info_path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(asdict(info)), encoding="utf-8")
        os.replace(temporary, self.info_path)

    def read(self) -> list[Result]:
        """The results kept so far, the first of each (item, setting) pair; `skipped` counts
        the lines that hold none (torn by a kill, damaged: their items are answered again)."""
        text = _read_regular(self.path)
        seen: dict[tuple[str, str], Result] = {}
        self.skipped = 0
        for line in (text or "").splitlines():
            try:
                result = Result.from_dict(json.loads(line))
            except (ValueError, RecursionError):  # torn, a number too large, too nested
                result = None
            if result is None:
                self.skipped += bool(line.strip())
                continue
            seen.setdefault((result.item, result.setting), result)
        return list(seen.values())

    def add(self, result: Result) -> None:
        """Append one result and make it durable before the next item starts."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(asdict(result), ensure_ascii=False) + "\n"
        with open(self.path, "a+b") as f:
            if f.tell() and (f.seek(-1, os.SEEK_END), f.read(1))[1] != b"\n":
                line = "\n" + line  # after a line a kill tore: start a line of our own
            f.write(line.encode())
            f.flush()
            os.fsync(f.fileno())


def _read_regular(path: Path) -> str | None:
    """A regular file's text; None for anything else (a FIFO would block the read for ever,
    a link to /dev/zero never end) or an unreadable one."""
    try:
        with open(path, "rb", opener=_no_blocking) as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                return None
            return f.read().decode("utf-8", errors="replace")
    except OSError:
        return None


def _no_blocking(path: str, flags: int) -> int:
    return os.open(path, flags | getattr(os, "O_NONBLOCK", 0))


def runs() -> list[tuple[ResultsFile, RunInfo]]:
    """The evaluations kept in the data dir, newest first."""
    found = []
    folder = results_dir()
    for path in folder.glob("*.jsonl") if folder.is_dir() else []:
        store = ResultsFile(path)
        info = store.info()
        if info is not None:
            found.append((store, info))
    return sorted(found, key=lambda pair: -pair[1].started)
