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
from collections.abc import Callable, Iterator
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


def benchmark_items(bench: Benchmark, path: Path, n: int | None, seed: int) -> list[Item]:
    """The benchmark's items, or a sample of `n` drawn with `seed` (see `sample`)."""
    if bench.name == "gsm8k":
        return sample(_gsm8k(path), n, seed)

    def item(line: int, row: dict) -> Item:
        return Item(str(row.get("unique_id") or line), str(row["problem"]), str(row["answer"]))

    return _sampled_lines(path, ("problem", "answer"), item, n, seed)


def _gsm8k(path: Path) -> list[Item]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path, columns=["question", "answer"])
    except Exception as exc:  # pyarrow raises its own kinds for a damaged file
        raise EvalError(f"{path} is not a readable GSM8K parquet file: {exc}") from exc
    rows = table.to_pylist()
    return [Item(str(n), str(row["question"]), gsm8k_reference(str(row["answer"])))
            for n, row in enumerate(rows, 1)]


def file_items(path: Path, n: int | None = None, seed: int = 0) -> list[Item]:
    """A user's JSON Lines file of "question" (or "problem") and "answer", or a sample of
    `n` of its items drawn with `seed` (see `sample`)."""
    def item(line: int, row: dict) -> Item:
        question = row.get("question", row.get("problem"))
        if not isinstance(question, str):
            raise EvalError(f"{path}, line {line}: no \"question\" (or \"problem\") text")
        answer = row["answer"]
        if isinstance(answer, bool) or not isinstance(answer, (str, int, float)):
            raise EvalError(f"{path}, line {line}: the answer is {type(answer).__name__}, not "
                            "text or a number")
        reference = gsm8k_reference(answer) if isinstance(answer, str) else str(answer)
        return Item(str(row.get("id", line)), question, reference)

    return _sampled_lines(path, ("answer",), item, n, seed)


def _sampled_lines(path: Path, needed: tuple[str, ...], item: Callable[[int, dict], Item],
                   n: int | None, seed: int) -> list[Item]:
    """The items of a JSON Lines file, every line checked, read twice rather than held: once
    to check and count them, once to keep the `n` drawn (a 256 MiB file of short lines took
    6.6 GB with --n 1). The same items, in the same order, as `sample` of them all."""
    count = sum(1 for _ in _items_of(path, needed, item))
    if count == 0:
        raise EvalError(f"{path} has no items")
    drawn = range(count) if n is None or n >= count else random.Random(seed).sample(
        range(count), n)
    place = {index: at for at, index in enumerate(drawn)}
    chosen: list[Item | None] = [None] * len(place)
    for index, found in enumerate(_items_of(path, needed, item)):
        if index in place:
            chosen[place[index]] = found
    return [found for found in chosen if found is not None]


def _items_of(path: Path, needed: tuple[str, ...],
              item: Callable[[int, dict], Item]) -> Iterator[Item]:
    try:
        if not path.is_file():  # a FIFO, a device or a folder
            raise EvalError(f"{path} is not a file")
        if path.stat().st_size > MAX_FILE_BYTES:
            raise EvalError(f"{path} is larger than {MAX_FILE_BYTES >> 20} MiB")
        with path.open(encoding="utf-8") as lines:
            for n, line in enumerate(lines, 1):
                if line.strip():
                    yield item(n, _row(path, n, line, needed))
    except (OSError, UnicodeDecodeError) as exc:
        raise EvalError(f"{path} cannot be read: {exc}") from exc


def _row(path: Path, n: int, line: str, needed: tuple[str, ...]) -> dict:
    try:
        row = json.loads(line)
    except RecursionError:
        raise EvalError(f"{path}, line {n}: nested too deeply to be an item") from None
    except ValueError as exc:  # torn JSON, or a number of more digits than Python reads
        why = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc).split(";")[0]
        raise EvalError(f"{path}, line {n}: not JSON ({why})") from None
    if not isinstance(row, dict) or any(key not in row for key in needed):
        raise EvalError(f"{path}, line {n}: an object with {' and '.join(needed)} "
                        "was expected")
    return row


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
