"""Option values the command line checks as it reads them: whole numbers and real numbers
within their ranges, each refused in one sentence (a number past what llama.cpp or SQLite can
hold crashed them), and the bounds the options share."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def _shown(text: str) -> str:
    return repr(text) if len(text) <= 24 else repr(text[:20] + "…")


def whole(low: int, high: int) -> Callable[[str], int]:
    """An option's whole number from `low` to `high`; anything else is refused in one sentence
    (a number past what llama.cpp or SQLite can hold crashed them)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:  # not a number, or more digits than Python converts
            value = None
        if value is None or not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"takes a whole number from {low:,} to {high:,}, not {_shown(text)}")
        return value

    return parse


def real(low: float, high: float, *, low_open: bool = False) -> Callable[[str], float]:
    """An option's finite number from `low` (excluded with `low_open`) to `high`."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or not low <= value <= high or (low_open and value == low):
            above = "above" if low_open else "from"
            raise argparse.ArgumentTypeError(
                f"takes a number {above} {low:g} up to {high:g}, not {_shown(text)}")
        return value

    return parse


MAX_CTX = 1 << 26  # tokens: more than any model's context, less than llama.cpp's 32 bits
MAX_LAYERS = 100_000  # --gpu-layers and --n-cpu-moe take no more
MANY = 1_000_000_000  # tokens, items or rows: more than anyone asks for
SESSION_ID = whole(1, 2**63 - 1)  # SQLite's integers
