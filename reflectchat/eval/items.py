"""The items of an evaluation: the built-in benchmarks, read from their files on the Hugging
Face Hub (fetched with huggingface_hub into its cache: cached, checked against the hub's hash,
resumed after a break, as `pull` keeps models), or a user's own JSON Lines file.

A user's file has one JSON object per line with a "question" (or "problem") and an "answer";
an "id" is optional (else the line number). Answers are checked by their final number unless
`--check math` says they are LaTeX to compare as mathematics.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path

from reflectchat.eval.checking import Kind, gsm8k_reference

MAX_FILE_BYTES = 256 << 20  # a benchmark file larger than this is not one


class EvalError(Exception):
    """Why an evaluation cannot start: one sentence for the user."""


@dataclass(frozen=True)
class Item:
    id: str
    question: str
    reference: str  # the answer to reach: a number, or LaTeX for MATH


@dataclass(frozen=True)
class Benchmark:
    name: str
    title: str
    repo: str  # a Hub dataset
    file: str
    kind: Kind


BENCHMARKS = {
    "gsm8k": Benchmark("gsm8k", "GSM8K (test)", "openai/gsm8k",
                       "main/test-00000-of-00001.parquet", Kind.NUMBER),
    "math500": Benchmark("math500", "MATH-500", "HuggingFaceH4/MATH-500", "test.jsonl",
                         Kind.MATH),
}


def needed(module: str, purpose: str) -> None:
    """EvalError if the eval extra's `module` is not installed."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise EvalError(f"{purpose} needs {module}, which is not installed: "
                        "pip install 'reflectchat[eval]'")


def fetch(bench: Benchmark) -> Path:
    """The benchmark's file from the Hub, through huggingface_hub's cache; offline and not
    cached: EvalError saying so and how to point at a file."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(hf_hub_download(bench.repo, bench.file, repo_type="dataset"))
    except LocalEntryNotFoundError as exc:
        raise EvalError(
            f"{bench.title} is not in the Hugging Face cache and the Hub cannot be reached "
            f"(offline?): run this once with a connection to download it, or point at a file "
            "of your own with --file PATH.jsonl (a \"question\" and an \"answer\" per line)"
        ) from exc
    except (HfHubHTTPError, OSError) as exc:
        raise EvalError(f"{bench.title} could not be fetched from the Hub "
                        f"({bench.repo}, {bench.file}): {exc}") from exc


def benchmark_items(bench: Benchmark, path: Path) -> list[Item]:
    if bench.name == "gsm8k":
        return _gsm8k(path)
    return [Item(str(row.get("unique_id") or n), str(row["problem"]), str(row["answer"]))
            for n, row in _json_lines(path, ("problem", "answer"))]


def _gsm8k(path: Path) -> list[Item]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path, columns=["question", "answer"])
    except Exception as exc:  # pyarrow raises its own kinds for a damaged file
        raise EvalError(f"{path} is not a readable GSM8K parquet file: {exc}") from exc
    rows = table.to_pylist()
    return [Item(str(n), str(row["question"]), gsm8k_reference(str(row["answer"])))
            for n, row in enumerate(rows, 1)]


def file_items(path: Path) -> list[Item]:
    """A user's JSON Lines file of "question" (or "problem") and "answer"."""
    items = []
    for n, row in _json_lines(path, ("answer",)):
        question = row.get("question", row.get("problem"))
        if not isinstance(question, str):
            raise EvalError(f"{path}, line {n}: no \"question\" (or \"problem\") text")
        answer = row["answer"]
        reference = gsm8k_reference(answer) if isinstance(answer, str) else str(answer)
        items.append(Item(str(row.get("id", n)), question, reference))
    return items


def _json_lines(path: Path, needed: tuple[str, ...]) -> list[tuple[int, dict]]:
    try:
        if not path.is_file():
            raise EvalError(f"{path} is not a file")
        if path.stat().st_size > MAX_FILE_BYTES:
            raise EvalError(f"{path} is larger than {MAX_FILE_BYTES >> 20} MiB")
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise EvalError(f"{path} cannot be read: {exc}") from exc
    rows = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise EvalError(f"{path}, line {n}: not JSON ({exc.msg})") from exc
        if not isinstance(row, dict) or any(key not in row for key in needed):
            raise EvalError(f"{path}, line {n}: an object with {' and '.join(needed)} "
                            "was expected")
        rows.append((n, row))
    if not rows:
        raise EvalError(f"{path} has no items")
    return rows


def sample(items: list[Item], n: int | None, seed: int) -> list[Item]:
    """`n` items drawn with a fixed seed (the same items on every run and machine), in the
    order drawn; all items, in file order, without `n`."""
    if n is None or n >= len(items):
        return items
    return random.Random(seed).sample(items, n)


def digest(items: list[Item]) -> str:
    """A short name for exactly these items: results are kept and resumed under it."""
    text = json.dumps([[i.id, i.question, i.reference] for i in items])
    return hashlib.sha256(text.encode()).hexdigest()[:16]
