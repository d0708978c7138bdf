"""Each item's result, kept as it comes in a JSON Lines file of its own run in the data dir,
so that a stopped or killed evaluation resumes where it stopped. A line torn by a kill, or
damaged later, is skipped (its item is answered again); nothing else is lost."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
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

    @property
    def scored(self) -> bool:
        """An answer that failed (the engine, the server) is not a wrong answer."""
        return self.error is None

    @classmethod
    def from_dict(cls, data: Any) -> Result | None:
        """The result a stored line holds; None if it is not one."""
        if not isinstance(data, dict):
            return None
        types = {"item": str, "setting": str, "correct": bool, "reference": str,
                 "reflections": int, "thinking_tokens": int, "completion_tokens": int,
                 "finish_reason": str, "raw": str, "tag_format": str}
        if any(not isinstance(data.get(k), t) for k, t in types.items()):
            return None
        try:
            return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})
        except TypeError:
            return None


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
              and isinstance(info.settings, list) and isinstance(info.items, int)
              and isinstance(info.kind, str) and isinstance(info.started, (int, float)))
        return info if ok else None


class ResultsFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def info_path(self) -> Path:
        return self.path.with_suffix(".json")

    def info(self) -> RunInfo | None:
        try:
            return RunInfo.from_dict(json.loads(self.info_path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
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
        """The results kept so far, the first of each (item, setting) pair."""
        try:
            lines = self.path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return []
        seen: dict[tuple[str, str], Result] = {}
        for line in lines:
            try:
                result = Result.from_dict(json.loads(line))
            except ValueError:  # torn JSON, or a number too large to read
                continue
            if result is not None:
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
