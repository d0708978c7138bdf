"""Which reasoning format a GGUF writes, read from the file itself: its chat template and its
special tokens, not guessed from the first tag of an answer.

The template is asked first, as llama.cpp's own chat parser does since 2026 (it renders a
template with and without a reasoning message and compares the two; llama.cpp PR #18675): the
text that appears around the reasoning is the family's pair of markers. A template that drops
reasoning it is given (R1's cuts it from earlier answers) is searched for the markers a family
writes, and a file without a template for the special tokens its vocabulary defines.
"""

from __future__ import annotations

import re
from collections.abc import Callable

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
                is_special: Callable[[str], bool]) -> FoundFormat:
    """The format a model writes, from its template (rendered by `render`) and else from its
    special (control and user-defined) tokens: `is_special` says whether a marker is one."""
    if template and render is not None:
        pair = _rendered_pair(render)
        if pair is not None:
            return FoundFormat(_family_of_pair(pair, template), "from the template")
        family = _marked(template)
        if family is not None:
            return FoundFormat(TagFormat(family), "from the template")
    family = _marked_by(is_special)
    if family is not None:
        return FoundFormat(TagFormat(family), "from its special tokens")
    return NOT_FOUND


def _marked(text: str) -> str | None:
    """The one family whose markers `text` holds (None: none, or several: a template that
    names two families says nothing sure)."""
    return _marked_by(lambda marker: marker in text)


def _marked_by(has: Callable[[str], bool]) -> str | None:
    """The one family all of whose markers `has` finds (in a text, or among a vocabulary's
    special tokens: asked marker by marker, as a vocabulary may hold 300,000 of them)."""
    found = {family for family, marks in _MARKS if all(has(m) for m in marks)}
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


# A template renderer: messages, whether to end with the generation prompt, and variables.
RenderTurn = Callable[..., str]


def find_wrapped(render: RenderTurn, switches: list[str],
                 specials_in: Callable[[str], list[str]], ends: set[str]) -> TagFormat | None:
    """The markers a template puts around reasoning and the answer, as llama.cpp's autoparser
    finds them (PR #18675), for families no pair of tags describes: the generation prompt
    with the thinking switches on and off (an empty thinking block written when off: Gemma 4;
    a thinking opener against an answer opener: Kimi K3), and an assistant turn rendered with
    reasoning and an answer (what lies between them closes the thinking and may open the
    answer; what follows the answer ends it), the prompt's own text past where that turn's
    reasoning begins (a pre-filled opener: Apriel's "Here are my reasoning steps:").
    `specials_in`: the special tokens' texts in a text; `ends`: the texts that end a turn."""
    user = [{"role": "user", "content": _USER}]
    turn = [*user, {"role": "assistant", "content": _ANSWER, "reasoning_content": _REASONING}]
    on, off = dict.fromkeys(switches, True), dict.fromkeys(switches, False)
    prompt = render(user, True, **on)
    shown = render(turn, False, **on)
    with_on = _added(render(user, False, **on), prompt)
    with_off = _added(render(user, False, **off), render(user, True, **off)) if switches else ""
    specials = sorted(set(specials_in(prompt + shown + with_off)), key=len, reverse=True)
    opener = closer = answer_opener = ""
    if switches:
        wrote_on, wrote_off = _differing(with_on, with_off, specials)
        if not wrote_on.strip() and len(wrote_off.split()) == 2:
            opener, closer = wrote_off.split()  # the empty block that turns thinking off
        elif wrote_on.strip() and wrote_off.strip():
            opener, answer_opener = wrote_on.strip(), wrote_off.strip()
    answer_end = ""
    if _REASONING in shown and _ANSWER in shown.split(_REASONING, 1)[1]:
        lead, rest = shown.split(_REASONING, 1)
        between, after = rest.split(_ANSWER, 1)
        between = between.strip()
        if answer_opener and between.endswith(answer_opener):
            between = between[:-len(answer_opener)].strip()
        closer = closer or between
        if not opener and prompt.startswith(lead):
            opener = prompt[len(lead):].strip() or _trailing_marker(lead, specials)
        answer_end = _answer_end(after, specials, ends)
    if not (_is_wrapper(opener) and _is_wrapper(closer)) or opener == closer:
        return None
    answer = (answer_opener, answer_end) if answer_opener or answer_end else None
    return TagFormat("tags", (opener, closer), answer)


# shapes of a marker pair around a name, as vocabularies write them: mirrored <|x> and <x|>,
# <x> and </x>, [X] and [/X], begin/end, start/end and open/close stems
_SHAPES = [("<{}>", "</{}>"), ("[{}]", "[/{}]"), ("<|{}>", "<{}|>"), ("<|{}|>", "<|/{}|>"),
           ("<|begin_of_{}|>", "<|end_of_{}|>"), ("<|start_of_{}|>", "<|end_of_{}|>"),
           ("<|{}_start|>", "<|{}_end|>"), ("<{}_start>", "<{}_end>"),
           ("<|{}_begin|>", "<|{}_end|>"), ("<|open_{}|>", "<|close_{}|>"),
           ("[BEGIN_{}]", "[END_{}]")]
_SHAPED = [(re.compile(re.escape(o).replace(re.escape("{}"), "(.{1,30}?)")), c)
           for o, c in _SHAPES]
_THINKING_NAME = re.compile(r"think|thought|reason", re.IGNORECASE)


def special_pair(texts: list[str]) -> FoundFormat | None:
    """A thinking pair among a vocabulary's special tokens that no family lists: one opener
    and its closer in a shape above, around a name that says thinking (`<|begin_of_thought|>`
    and `<|end_of_thought|>`, `[REASON]` and `[/REASON]`). None unless exactly one."""
    have = set(texts)
    pairs = {(text, closer.format(m.group(1))) for text in texts for shape, closer in _SHAPED
             if (m := shape.fullmatch(text)) and _THINKING_NAME.search(m.group(1))
             and closer.format(m.group(1)) in have}
    if len(pairs) != 1:
        return None
    return FoundFormat(TagFormat("tags", pairs.pop()), "from a pair of its special tokens")


_BEGIN_END = re.compile(r"\[BEGIN ([A-Z][A-Z _]{0,38})\]")


def find_answer_markers(template: str) -> TagFormat | None:
    """A final answer the template asks for between begin/end markers written as text
    (`[BEGIN FINAL RESPONSE]` ... `[END FINAL RESPONSE]`, as Apriel 1.5's system prompt asks):
    all before the first is thinking, and the second ends the answer."""
    for found in _BEGIN_END.finditer(template):
        end = f"[END {found.group(1)}]"
        if end in template:
            return TagFormat("tags", ("", found.group(0)), ("", end))
    return None


def _is_wrapper(text: str) -> bool:
    """A marker of up to a line: it may hold spaces ([BEGIN FINAL RESPONSE]), not a line
    break, nor our placeholders."""
    return 0 < len(text) <= _LONGEST_MARKER and "\n" not in text and "\ue000" not in text


def _added(before: str, after: str) -> str:
    """What `after` writes past `before` (the generation prompt past the chat)."""
    return after[len(before):] if after.startswith(before) else ""


def _differing(a: str, b: str, specials: list[str]) -> tuple[str, str]:
    """The parts of `a` and `b` that differ, never cutting a special token, each widened to
    the special tokens that touch it on either side (so "think" against "response" is
    `<|open|>think<|sep|>` against `<|open|>response<|sep|>`)."""
    start = 0
    while start < min(len(a), len(b)) and a[start] == b[start]:
        start += 1
    start = min(_token_start(a, start, specials), _token_start(b, start, specials))
    end = 0
    while end < min(len(a), len(b)) - start and a[-1 - end] == b[-1 - end]:
        end += 1
    end = len(a) - max(_token_end(a, len(a) - end, specials),
                       _token_end(b, len(b) - end, specials) + len(a) - len(b))
    if a[start:len(a) - end] and b[start:len(b) - end]:  # a word against a word: widen
        start -= len(_special_end(a[:start], specials))
        end -= len(next((t for t in specials if a[len(a) - end:].startswith(t)), ""))
    return a[start:len(a) - end], b[start:len(b) - end]


def _token_start(text: str, cut: int, specials: list[str]) -> int:
    """`cut`, moved back to the start of a special token it falls inside."""
    for special in specials:
        at = text.rfind(special, 0, cut + len(special) - 1)
        if at >= 0 and at < cut < at + len(special):
            cut = at
    return cut


def _token_end(text: str, cut: int, specials: list[str]) -> int:
    """`cut`, moved on to the end of a special token it falls inside."""
    for special in specials:
        at = text.rfind(special, 0, cut + len(special) - 1)
        if at >= 0 and at < cut < at + len(special):
            cut = at + len(special)
    return cut


def _trailing_marker(text: str, specials: list[str]) -> str:
    """The marker a prompt ends with: its last special tokens, and the word before them when
    a special token comes before that word (`<|open|>think<|sep|>`, `<|channel>thought`,
    `<think>`); "" if it ends with none."""
    text = text.rstrip()
    parts: list[str] = []
    while special := _special_end(text, specials):
        parts.insert(0, special)
        text = text[:-len(special)]
    at = len(text)
    while at and not text[at - 1].isspace() and not _special_end(text[:at], specials):
        at -= 1
    word, before = text[at:], _special_end(text[:at], specials)
    if word and before:
        parts[:0] = [before, word]
    return "".join(parts)


def _special_end(text: str, specials: list[str]) -> str:
    return next((s for s in specials if s and text.endswith(s)), "")


def _answer_end(after: str, specials: list[str], ends: set[str]) -> str:
    """What ends a wrapped answer: the special token the template writes right after it
    (unless that token only ends the turn), else its first line of text."""
    after = after.lstrip()
    special = next((s for s in sorted(specials, key=len, reverse=True)
                    if after.startswith(s)), None)
    if special is not None:
        return "" if special in ends else special
    line = after.split("\n", 1)[0].strip()
    return line if 0 < len(line) <= _LONGEST_MARKER and not any(
        e in line for e in ends) else ""
