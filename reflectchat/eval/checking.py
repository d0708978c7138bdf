"""Checking an answer the way each benchmark is checked.

- GSM8K: by the final number. The reference follows `#### ` in the dataset's answer; the
  model's is the last `\\boxed{...}` of its output, else the number after its last "####",
  else its last number (commas, a currency sign and a trailing full stop ignored), compared
  as numbers.
- MATH: by mathematical equivalence with Hugging Face's `math-verify` (`parse`, `verify`), the
  checker open leaderboards use, rather than string equality: `\\frac{1}{2}`, `0.5` and
  `\\dfrac12` are the same answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import Enum

NUMBER = re.compile(r"-?\$?\s?\d[\d,]*(?:\.\d+)?")
MATH_LIMIT_S = 30.0  # one answer checked, sympy's import included
MARKED = re.compile(r"####\s*(-?\$?\s?\d[\d,]*(?:\.\d+)?)")


class Kind(Enum):
    NUMBER = "number"  # GSM8K and sets like it
    MATH = "math"  # MATH-500 and sets like it


def last_boxed(text: str) -> str | None:
    """The content of the last non-empty `\\boxed{...}` (or `\\fbox{...}`), braces
    balanced. An empty one is skipped: a model that repeats the instruction ("put your final
    answer within \\boxed{}") has not answered."""
    end = len(text)
    while True:
        start = max(text.rfind("\\boxed{", 0, end), text.rfind("\\fbox{", 0, end))
        if start < 0:
            return None
        inside = _braced(text, text.index("{", start) + 1)
        if inside is not None and inside.strip():
            return inside
        end = start


def _braced(text: str, at: int) -> str | None:
    """The text from `at` to the brace that closes the one before it."""
    depth = 1
    for i in range(at, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[at:i]
    return None


def _number(text: str) -> Decimal | None:
    cleaned = text.replace(",", "").replace("$", "").replace(" ", "").rstrip(".")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def final_number(text: str) -> str | None:
    """The number an answer ends on, as written (see the module's note); None if it has
    none."""
    boxed = last_boxed(text)
    if boxed is not None:
        found = NUMBER.findall(boxed)
        return found[-1].strip() if found else boxed.strip() or None
    marked = MARKED.findall(text)
    if marked:
        return marked[-1].strip()
    found = NUMBER.findall(text)
    return found[-1].strip() if found else None


def gsm8k_reference(answer: str) -> str:
    """The reference number of a GSM8K answer: what follows its `#### `."""
    return answer.rsplit("####", 1)[-1].strip()


@dataclass(frozen=True)
class Verdict:
    got: str | None  # the answer read from the model's text, as written
    correct: bool


def check(kind: Kind, reference: str, text: str) -> Verdict:
    """Whether `text` (a model's output, or a claim in its thinking) reaches `reference`."""
    if kind is Kind.NUMBER:
        got = final_number(text)
        want = _number(reference)
        value = _number(got) if got is not None else None
        return Verdict(got, value is not None and want is not None and value == want)
    return _check_math(reference, text)


def _check_math(reference: str, text: str) -> Verdict:
    """math-verify, in the bounded process (engine/sandbox.py): a 27-byte answer like
    `(x+1)^{10^8}` made sympy take 2.7 GB and minutes. Past the bound the answer is wrong."""
    from reflectchat.engine.sandbox import BoundError, SandboxError, run_bounded

    boxed = last_boxed(text)
    try:
        got, correct = run_bounded("reflectchat.eval.checking:math_verdict", reference, text,
                                   seconds=MATH_LIMIT_S)
    except (BoundError, SandboxError):
        return Verdict(boxed, False)
    return Verdict(got, bool(correct))


def math_verdict(reference: str, text: str) -> tuple[str | None, bool]:
    """What the answer says and whether it equals `reference` as mathematics (math-verify;
    run on the bounded process's main thread, where its SIGALRM timeouts work)."""
    from math_verify import parse, verify  # loads sympy: only when a MATH answer is checked

    gold = parse(f"${reference}$")
    boxed = last_boxed(text)
    answer = parse(text)
    got = boxed if boxed is not None else (str(answer[-1]) if answer else None)
    if not gold or not answer:
        return got, False
    return got, bool(verify(gold, answer))
