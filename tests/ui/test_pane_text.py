"""The panes are read from the one fold of the events (`Answer`): what the worker sends batch by
batch adds up to the panes read whole, however the model's text is cut into pieces; and a
reflection's marker stays where it came when the output turns out to be thinking."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from reflectchat.engine.base import TagFormat
from reflectchat.reflection.answer import Answer
from reflectchat.reflection.corrections import corrections, corrections_of
from reflectchat.reflection.events import Channel, EventKind
from reflectchat.reflection.parser import ReflectionParser
from reflectchat.ui.pane_text import PaneGrowth, panes

ANSWERS = [
    ("<thinking>\nThe list has 4 items. So the total is 9.\n<reflection>\nI added wrong: 4 + 6 "
     "is 10.\n</reflection>\nThe total is 10. Done.\n<reflection>Check: yes.</reflection>"
     "</thinking>\n<output>\nTen \x1b[31mred\x1b[0m.\n</output>", TagFormat.REFLECTION),
    ("Adding 2 and 3. <reflection>No, 2 + 3 = 5.</reflection> So 5.\n</thinking>"
     "<output>The sum is 5.</output>", TagFormat.REFLECTION),  # the template opened thinking
    ("<think>a\n\nb</think>Output one.<think>more thought</think>Output two.", TagFormat.THINK),
    ("weighing it</think>\n\nAnswer.", TagFormat.AUTO),
]


def streamed(raw: str, tag_format: TagFormat, cuts: list[int]) -> tuple[Answer, str, bool]:
    """Feed `raw` cut at `cuts` through the real parser into an answer, reading the panes'
    growth after each piece as the worker does; gives the answer, the growth joined (from the
    last time the panes were read whole) and whether they were."""
    answer, parser, growth = Answer(), ReflectionParser(tag_format), PaneGrowth()
    shown = {c: "" for c in Channel}
    whole = False
    bounds = sorted({0, len(raw), *(c % (len(raw) + 1) for c in cuts)})
    pieces = [raw[a:b] for a, b in itertools.pairwise(bounds)]
    for n, piece in enumerate(pieces):
        events = parser.feed(piece) + (parser.finish() if n == len(pieces) - 1 else [])
        for event in events:
            answer.apply(event)
            if event.kind is EventKind.RECLASSIFY:
                growth.reset()
                shown, whole = {c: "" for c in Channel}, True
        for channel, grown in growth.read(answer).items():
            shown[channel] += grown
    return answer, "\x00".join(shown[c] for c in Channel), whole


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(ANSWERS), st.lists(st.integers(min_value=0), max_size=12))
def test_the_growth_sent_batch_by_batch_adds_up_to_the_panes_read_whole(case, cuts):
    raw, tag_format = case
    answer, shown, _ = streamed(raw, tag_format, cuts)
    assert shown == "\x00".join(panes(answer)[c] for c in Channel)
    # and the answer is the one a single parse of the whole text gives
    once = Answer.from_raw(raw, tag_format)
    assert (answer.thinking, answer.reflections, answer.output, answer.marks) == \
        (once.thinking, once.reflections, once.output, once.marks)


def test_a_reflection_in_thinking_the_template_opened_keeps_its_place():
    raw, tag_format = ANSWERS[1]
    answer, shown, whole = streamed(raw, tag_format, [5, 20, 40])
    assert whole  # the output so far was read as thinking: the panes went whole once
    assert answer.thinking[:answer.marks[0]].strip() == "Adding 2 and 3."
    assert shown.startswith("Adding 2 and 3.\n\n###### [↳ reflection 1](#reflection-1)")
    found = corrections_of(answer)
    assert (found[0].before, found[0].after) == ("Adding 2 and 3.", "So 5.")
    # as when the app knew from the start that the template opened the thinking
    assert found == corrections_of(Answer.from_raw(raw, tag_format, prefilled=True))


def test_the_finished_reflection_pane_lists_what_each_reflection_corrected():
    raw, tag_format = ANSWERS[0]
    answer = Answer.from_raw(raw, tag_format)
    found = corrections_of(answer)
    assert found == corrections(raw, tag_format)
    text = panes(answer, found)
    assert text[Channel.REFLECTION].startswith("**2 corrections**, each after:\n\n"
                                               "1. [“So the total is 9.”](#reflection-1)")
    assert "- **before:** “So the total is 9.”\n- **after:** “The total is 10.”" in \
        text[Channel.REFLECTION]
    assert "Ten ␛[31mred␛[0m." in text[Channel.OUTPUT]  # model text is made literal
    thinking = text[Channel.THINKING]
    assert thinking.index("So the total is 9.") < thinking.index("↳ reflection 1") \
        < thinking.index("The total is 10.") < thinking.index("↳ reflection 2")
