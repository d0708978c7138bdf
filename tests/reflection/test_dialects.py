"""Each family's reasoning markers, as real models write them, read into the three channels."""

from __future__ import annotations

import pytest

from reflectchat.engine.base import TagFormat
from reflectchat.reflection.answer import Answer
from reflectchat.reflection.events import EventKind
from reflectchat.reflection.parser import ReflectionParser, parse_whole

HARMONY = TagFormat("harmony")
# gpt-oss after its generation prompt `<|start|>assistant`, as its model card shows the format
GPT_OSS = ("<|channel|>analysis<|message|>User asks 2+2. Simple: 4.<|end|>"
           "<|start|>assistant<|channel|>final<|message|>2 + 2 = **4**.")


def answer(text: str, fmt: TagFormat, prefilled: bool = False) -> Answer:
    return Answer.from_raw(text, fmt, prefilled)


def shown(a: Answer) -> tuple[str, list[str], str]:
    return a.thinking, a.reflections, a.output


@pytest.mark.parametrize("fmt", [HARMONY, TagFormat.AUTO])
def test_harmony_analysis_is_thinking_and_final_is_the_answer(fmt):
    a = answer(GPT_OSS + "<|return|>", fmt)
    assert shown(a) == ("User asks 2+2. Simple: 4.", [], "2 + 2 = **4**.")


def test_harmony_tool_calls_stay_in_the_answer_with_their_header_and_no_markup():
    text = ("<|channel|>analysis<|message|>Need the weather.<|end|>"
            "<|start|>assistant<|channel|>commentary to=functions.get_weather "
            "<|constrain|>json<|message|>{\"city\": \"Paris\"}<|call|>")
    a = answer(text, HARMONY)
    assert a.thinking == "Need the weather."
    assert a.output == '[commentary to=functions.get_weather json] {"city": "Paris"}'
    assert "<|" not in a.thinking + a.output


def test_harmony_markup_is_never_shown_however_it_is_cut():
    whole = answer(GPT_OSS, HARMONY)
    for cut in range(1, len(GPT_OSS)):
        parser = ReflectionParser(HARMONY)
        cut_answer = Answer()
        for event in parser.feed(GPT_OSS[:cut]) + parser.feed(GPT_OSS[cut:]) + parser.finish():
            assert "<|" not in event.text and "|>" not in event.text
            cut_answer.apply(event)
        assert shown(cut_answer) == shown(whole)


def test_a_harmony_header_that_never_ends_is_kept_as_the_answer():
    a = answer("<|channel|>analysis and then the stream stopped", HARMONY)
    assert a.output == "[analysis and then the stream stopped]"


@pytest.mark.parametrize(("fmt", "text"), [
    (TagFormat("magistral"), "[THINK]Let me count: 3.[/THINK]\n\nThree."),
    (TagFormat("seed"), "<seed:think>Let me count: 3.</seed:think>Three."),
    (TagFormat("thought"), "<thought>\nLet me count: 3.\n</thought>\nThree."),
    (TagFormat("granite"), "<think>Let me count: 3.</think><response>Three.</response>"),
    (TagFormat("granite"), "Here is my thought process:\nLet me count: 3.\n"
                           "Here is my response:\nThree."),
    (TagFormat.think_tags("<|think|>,<|/think|>"), "<|think|>Let me count: 3.<|/think|>Three."),
])
def test_each_family_splits_thinking_from_the_answer(fmt, text):
    assert shown(answer(text, fmt)) == ("Let me count: 3.", [], "Three.")


@pytest.mark.parametrize("text", [
    "[THINK]Let me count: 3.[/THINK]\n\nThree.",
    "<seed:think>Let me count: 3.</seed:think>Three.",
    "<thought>\nLet me count: 3.\n</thought>\nThree.",
])
def test_auto_finds_the_family_from_its_first_tag(text):
    assert shown(answer(text, TagFormat.AUTO)) == ("Let me count: 3.", [], "Three.")


def test_seed_budget_notes_stay_in_thinking():
    text = ("<seed:think>First idea.<seed:cot_budget_reflect>I have used 129 tokens, and there "
            "are 383 tokens remaining for use.</seed:cot_budget_reflect> Second idea."
            "</seed:think>The answer.")
    a = answer(text, TagFormat("seed"))
    assert "I have used 129 tokens" in a.thinking and a.thinking.endswith("Second idea.")
    assert a.output == "The answer."


@pytest.mark.parametrize(("fmt", "closer"), [
    (TagFormat("magistral"), "[/THINK]"), (TagFormat("seed"), "</seed:think>"),
    (TagFormat("thought"), "</thought>"), (TagFormat.AUTO, "[/THINK]"),
    (TagFormat.AUTO, "</thought>"),
])
def test_a_template_that_opened_thinking_is_read_from_the_lone_closer(fmt, closer):
    events = parse_whole(f"Counting.\n{closer}\n\nThree.", fmt)
    assert any(e.kind is EventKind.RECLASSIFY and e.text == closer for e in events)
    assert shown(answer(f"Counting.\n{closer}\n\nThree.", fmt)) == ("Counting.", [], "Three.")
    if fmt != TagFormat.AUTO:  # known to be prefilled, the format is known too
        assert shown(answer(f"Counting.\n{closer}\n\nThree.", fmt, prefilled=True)) == \
            ("Counting.", [], "Three.")


def test_markers_inside_markdown_code_stay_text():
    text = "[THINK]t[/THINK]Write `[THINK]` and\n```\n[/THINK] <thought>\n```\n"
    a = answer(text, TagFormat("magistral"))
    assert a.thinking == "t" and "`[THINK]`" in a.output and "[/THINK] <thought>" in a.output


def test_granite_response_tags_are_text_for_the_think_family():
    """Only the granite format removes <response>: another family's answer keeps it."""
    a = answer("<think>t</think><response>r</response>", TagFormat.THINK)
    assert a.output == "<response>r</response>"
