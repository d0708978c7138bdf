"""The Markdown of the three panes, read from an `Answer` (the one fold of channel events).

Each reflection becomes a numbered entry in the Reflection pane, and the Thinking pane gets a
numbered marker where it occurred (`Answer.marks`); the two link to each other
(`#reflection-N`, `#thinking-N`). Once the answer is whole, the Reflection pane opens with a
list of its corrections and shows under each what changed (`reflection/corrections.py`).
Model text is made literal first: control characters become visible symbols.

The worker thread reads the panes' growth from the answer between events (`PaneGrowth`) and
sends only that; the UI appends it.
"""

from __future__ import annotations

from reflectchat.chat.transcript import quoted
from reflectchat.reflection.answer import Answer
from reflectchat.reflection.corrections import Correction
from reflectchat.reflection.events import Channel
from reflectchat.untrusted import visible

REFLECTION_LINK = "#reflection-"
THINKING_LINK = "#thinking-"


def thinking_marker(n: int) -> str:
    return f"\n\n###### [↳ reflection {n}]({REFLECTION_LINK}{n})\n\n"


def reflection_heading(n: int) -> str:
    return f"\n\n#### [Reflection {n} ↑]({THINKING_LINK}{n})\n\n"


class PaneGrowth:
    """What each pane gained since the last call: the text that came, the markers and headings
    of reflections that opened. Answers only grow, except when the output so far turns out to
    be thinking (RECLASSIFY): then `reset()` and read the panes whole again."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._thinking = self._output = self._marks = self._reflections = self._last = 0

    def read(self, answer: Answer) -> dict[Channel, str]:
        thinking, parts, at = answer.thinking, [], self._thinking
        for n in range(self._marks, len(answer.marks)):
            mark = answer.marks[n]
            parts += [visible(thinking[at:mark]), thinking_marker(n + 1)]
            at = mark
        parts.append(visible(thinking[at:]))
        reflection = []
        if self._reflections:
            reflection.append(visible(answer.reflections[self._reflections - 1][self._last:]))
        for n in range(self._reflections, len(answer.reflections)):
            reflection += [reflection_heading(n + 1), visible(answer.reflections[n])]
        grown = {Channel.THINKING: "".join(parts), Channel.REFLECTION: "".join(reflection),
                 Channel.OUTPUT: visible(answer.output[self._output:])}
        self._thinking, self._output = len(thinking), len(answer.output)
        self._marks, self._reflections = len(answer.marks), len(answer.reflections)
        self._last = len(answer.reflections[-1]) if answer.reflections else 0
        return grown


def panes(answer: Answer, found: list[Correction] | None = None) -> dict[Channel, str]:
    """The three panes of `answer` whole; with `found` (the answer's corrections, once it is
    whole) the Reflection pane opens with the corrections at a glance: each reflection with
    the sentence of thinking it followed (a link to it), and under each reflection what changed,
    the claim before it beside the claim after it."""
    text = PaneGrowth().read(answer)
    if found:
        listing = "\n".join(
            f"{c.n}. [{quoted(visible(c.before)) or 'at the start'}]({REFLECTION_LINK}{c.n})"
            for c in found)
        text[Channel.REFLECTION] = (f"**{len(found)} correction{'s' * (len(found) != 1)}**, "
                                    f"each after:\n\n{listing}")
        for c, entry in zip(found, answer.reflections, strict=False):
            text[Channel.REFLECTION] += (reflection_heading(c.n) + visible(entry).strip()
                                         + "\n\n" + _what_changed(c))
    return text


def _what_changed(c: Correction) -> str:
    """The claim before a reflection and the one after it, one under the other: a pane is too
    narrow for the export's two-column table."""
    before = quoted(visible(c.before)) or "—"
    after = quoted(visible(c.after)) or "—"
    return f"- **before:** {before}\n- **after:** {after}\n"
