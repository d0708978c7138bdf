"""What a chat template says of reasoning, read the same way whoever holds the vocabulary: a
GGUF loaded here (`prompt.py`) or a server that shows its template and tokenizer
(`server_template.py`). Reading needs the template's text, its bounded renders, and which
texts are the vocabulary's special tokens."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from reflectchat.engine import sandbox
from reflectchat.engine.base import FoundFormat, TagFormat
from reflectchat.engine.reasoning_found import (
    find_answer_markers,
    find_format,
    find_wrapped,
    special_pair,
)
from reflectchat.engine.sandbox import SandboxError, run_bounded

# what a template variable that turns thinking on or off is named for (`switches`)
_SWITCH_NAME = re.compile(r"think|reason", re.IGNORECASE)
_HI = [{"role": "user", "content": "Hi"}]


def switched(levels: list[str], switches: list[str], effort: str) -> dict[str, object]:
    """The template variables that ask for `effort`: every on/off switch on (off for "off"),
    every effort variable at that level."""
    values: dict[str, object] = dict.fromkeys(switches, effort != "off")
    if effort != "off":
        values |= dict.fromkeys(levels, effort)
    return values


@dataclass(frozen=True)
class TemplateReader:
    source: str  # the template's text
    prompt: Callable[..., str]  # render(messages, **variables) with the generation prompt
    whole: Callable[..., str]  # the same without it
    is_special: Callable[[str], bool]  # a text that is one special token
    specials_in: Callable[[str], list[str]]  # the special tokens' texts in a text
    ends: frozenset[str]  # the texts that end a turn (end-of-generation tokens)
    listed: Callable[[], list[str]] = list  # the vocabulary's special tokens, where known

    def switches(self) -> tuple[list[str], list[str]]:
        """The effort variables and the thinking on/off switches: of the variables the
        template reads, those named for effort, thinking or reasoning that change the prompt
        it writes (an effort from low to high, a switch from true to false)."""
        render = self.prompt
        names = run_bounded("reflectchat.engine.sandbox_worker:read_variables", self.source,
                            seconds=sandbox.TIME_LIMIT_S)
        levels = [n for n in names if "effort" in n.lower()
                  and render(_HI, **{n: "low"}) != render(_HI, **{n: "high"})]
        switches = [n for n in names if n not in levels and _SWITCH_NAME.search(n)
                    and render(_HI, **{n: True}) != render(_HI, **{n: False})]
        return levels, switches

    def found_format(self, switches: Callable[[], list[str]]) -> FoundFormat:
        """The family the template's markers name, else the markers its renders show
        (reasoning_found.find_wrapped) with the thinking `switches` (found only then). Raises
        what a render raises past its bounds."""
        self.prompt(_HI)  # a template that cannot render a plain chat fails here
        found = find_format(self.source, self.whole, self.is_special)
        if found.tag_format != TagFormat.AUTO:
            return found

        def render(messages: list[dict[str, str]], generation: bool, **variables: object) -> str:
            return (self.prompt if generation else self.whole)(messages, **variables)

        try:
            wrapped = find_wrapped(render, switches(), self.specials_in, set(self.ends))
        except SandboxError:  # a render the template refuses: it shows nothing more
            wrapped = None
        if wrapped is not None:
            return FoundFormat(wrapped, "from the template's renders")
        asked = find_answer_markers(self.source)
        if asked is not None:
            return FoundFormat(asked, "from the answer markers its template asks for")
        return special_pair(self.listed()) or found
