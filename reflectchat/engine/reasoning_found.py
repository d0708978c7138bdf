"""Which reasoning format a GGUF writes, read from the file itself: its chat template and its
special tokens, not guessed from the first tag of an answer.

The template is asked first, as llama.cpp's own chat parser does since 2026 (it renders a
template with and without a reasoning message and compares the two; llama.cpp PR #18675): the
text that appears around the reasoning is the family's pair of markers. A template that drops
reasoning it is given (R1's cuts it from earlier answers) is searched for the markers a family
writes, and a file without a template for the special tokens its vocabulary defines.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from reflectchat.engine.base import FoundFormat, TagFormat
from reflectchat.engine.families import (
    GRANITE_RESPONSE,
    GRANITE_THINKING,
    HARMONY_CHANNEL,
    HARMONY_MESSAGE,
    THINK_TAGS,
)
from reflectchat.engine.sandbox import BoundError

# A template renderer, without the generation prompt: messages -> the prompt.
Render = Callable[[list[dict[str, str]]], str]

# What each family writes (all of a row's markers present: that family).
_MARKS: list[tuple[str, tuple[str, ...]]] = [
    ("harmony", (HARMONY_CHANNEL, HARMONY_MESSAGE)),
    ("granite", ("<response>", "</response>")),
    ("granite", (GRANITE_THINKING, GRANITE_RESPONSE)),
    ("reflection", ("<thinking>", "<reflection>", "<output>")),
    ("magistral", THINK_TAGS["magistral"]),
    ("seed", THINK_TAGS["seed"]),
    ("thought", THINK_TAGS["thought"]),
    ("think", THINK_TAGS["think"]),
]
_LONGEST_MARKER = 40
_USER, _REASONING, _ANSWER = "\ue000U\ue001", "\ue000R\ue001", "\ue000A\ue001"


NOT_FOUND = FoundFormat(TagFormat.AUTO, "the model file names no reasoning markers; the first "
                                        "tag of an answer decides")


def find_format(template: str | None, render: Render | None,
                special_tokens: Callable[[], Iterable[str]]) -> FoundFormat:
    """The format a model writes, from its template (rendered by `render`) and else the texts
    of its special (control and user-defined) tokens."""
    if template and render is not None:
        pair = _rendered_pair(render)
        if pair is not None:
            return FoundFormat(_family_of_pair(pair, template), "from the template")
        family = _marked(template)
        if family is not None:
            return FoundFormat(TagFormat(family), "from the template")
    family = _marked(" ".join(special_tokens()))
    if family is not None:
        return FoundFormat(TagFormat(family), "from its special tokens")
    return NOT_FOUND


def _marked(text: str) -> str | None:
    """The one family whose markers `text` holds (None: none, or several: a vocabulary or a
    template that names two families says nothing sure)."""
    found = {family for family, marks in _MARKS if all(m in text for m in marks)}
    if "granite" in found:
        found.discard("think")  # granite writes <think> too
    return found.pop() if len(found) == 1 else None


def _family_of_pair(pair: tuple[str, str], template: str) -> TagFormat:
    marked = _marked(template)
    if marked in ("harmony", "granite", "reflection"):
        return TagFormat(marked)  # their dialects hold more than a pair
    for family, tags in THINK_TAGS.items():
        if tags == pair:
            return TagFormat(family)
    return TagFormat("tags", pair)


def _rendered_pair(render: Render) -> tuple[str, str] | None:
    """The markers the template writes around an assistant message's reasoning."""
    try:
        plain = render([{"role": "user", "content": _USER},
                        {"role": "assistant", "content": _ANSWER}])
    except BoundError:
        raise  # the caller stops using this template
    except Exception:  # a template that cannot render a plain chat tells us nothing
        return None
    for key in ("reasoning_content", "thinking"):
        try:
            shown = render([{"role": "user", "content": _USER},
                            {"role": "assistant", "content": _ANSWER, key: _REASONING}])
        except BoundError:
            raise
        except Exception:  # a template's own raise_exception, or any Jinja error
            continue
        if _REASONING not in shown:
            continue
        start = 0
        while start < min(len(plain), len(shown)) and plain[start] == shown[start]:
            start += 1
        end = 0
        while end < min(len(plain), len(shown)) - start and plain[-1 - end] == shown[-1 - end]:
            end += 1
        added = shown[start:len(shown) - end]
        before, found, after = added.partition(_REASONING)
        opener, closer = before.strip(), after.strip()
        if found and _is_marker(opener) and _is_marker(closer):
            return opener, closer
    return None


def _is_marker(text: str) -> bool:
    return 0 < len(text) <= _LONGEST_MARKER and not any(c.isspace() for c in text)
