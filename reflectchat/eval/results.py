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


def results_file(run_key: str) -> Path:
    return data_dir() / "eval" / f"{run_key}.jsonl"


class ResultsFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> list[Result]:
        """The results kept so far, the first of each (item, setting) pair."""
        try:
            lines = self.path.read_text(encoding="utf-8", errors="replace").splitlines()
        except FileNotFoundError:
            return []
        seen: dict[tuple[str, str], Result] = {}
        for line in lines:
            try:
                result = Result.from_dict(json.loads(line))
            except json.JSONDecodeError:
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
