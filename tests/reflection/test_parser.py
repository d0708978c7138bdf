"""The streaming tag parser: channel splitting, odd input, and independence from chunking."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from reflectchat.engine.base import FORMAT_NAMES, TagFormat
from reflectchat.reflection.answer import Answer
from reflectchat.reflection.events import Channel, ChannelEvent, EventKind
from reflectchat.reflection.parser import ReflectionParser

T, R, OUT = Channel.THINKING, Channel.REFLECTION, Channel.OUTPUT
OPEN, TEXT, CLOSE = EventKind.OPEN, EventKind.TEXT, EventKind.CLOSE


def parse(text: str, fmt: TagFormat = TagFormat.REFLECTION, prefilled: bool = False,
          chunks: list[int] | None = None) -> list[ChannelEvent]:
    """Parse `text` fed in pieces cut at the given offsets, with adjacent text merged."""
    parser = ReflectionParser(fmt, prefilled=prefilled)
    cuts = [0, *sorted(set(chunks or [])), len(text)]
    events = []
    for a, b in pairwise(cuts):
        events += parser.feed(text[a:b])
    events += parser.finish()
    return merge(events)


def merge(events: list[ChannelEvent]) -> list[ChannelEvent]:
    out: list[ChannelEvent] = []
    for e in events:
        if out and e.kind is TEXT and out[-1].kind is TEXT and out[-1].channel is e.channel:
            out[-1] = ChannelEvent(TEXT, e.channel, out[-1].text + e.text)
        else:
            out.append(e)
    return out


def answer_of(text: str, fmt: TagFormat = TagFormat.REFLECTION, prefilled: bool = False):
    answer = Answer()
    parser = ReflectionParser(fmt, prefilled=prefilled)
    for e in parser.feed(text) + parser.finish():
        answer.apply(e)
    return answer


def test_reflection_format_nests_reflections_inside_thinking():
    text = ("<thinking>\nStep one.\n<reflection>\nWrong sign.\n</reflection>\nStep two.\n"
            "<reflection>Second fix.</reflection>\n</thinking>\n\n<output>\nAnswer: 42\n</output>")
    assert parse(text) == [
        ChannelEvent(OPEN, T), ChannelEvent(TEXT, T, "Step one."),
        ChannelEvent(OPEN, R), ChannelEvent(TEXT, R, "Wrong sign."), ChannelEvent(CLOSE, R),
        ChannelEvent(TEXT, T, "\n\nStep two."),
        ChannelEvent(OPEN, R), ChannelEvent(TEXT, R, "Second fix."), ChannelEvent(CLOSE, R),
        ChannelEvent(CLOSE, T),
        ChannelEvent(OPEN, OUT), ChannelEvent(TEXT, OUT, "Answer: 42"), ChannelEvent(CLOSE, OUT),
    ]
    answer = answer_of(text)
    assert answer.thinking == "Step one.\n\nStep two."
    assert answer.reflections == ["Wrong sign.", "Second fix."]
    assert answer.output == "Answer: 42"


def test_text_is_emitted_as_soon_as_it_is_unambiguous():
    parser = ReflectionParser(TagFormat.REFLECTION)
    assert parser.feed("<thinking>Hello wor") == [
        ChannelEvent(OPEN, T), ChannelEvent(TEXT, T, "Hello wor")]
    assert parser.feed("ld <refl") == [ChannelEvent(TEXT, T, "ld")]  # held: " " and "<refl"
    assert parser.feed("ection>") == [ChannelEvent(OPEN, R)]
    assert merge(parser.feed("<reflex")) == [ChannelEvent(TEXT, R, "<reflex")]  # not a tag


def test_unclosed_tags_at_the_end_keep_their_text():
    assert parse("<thinking>still thinking <refl") == [
        ChannelEvent(OPEN, T), ChannelEvent(TEXT, T, "still thinking <refl"),
        ChannelEvent(CLOSE, T)]
    assert answer_of("<thinking>a</thinking><output>partial answer").output == "partial answer"


def test_untagged_text_and_stray_closing_tags_are_output():
    assert answer_of("Just an answer.").output == "Just an answer."
    assert answer_of("x </reflection> y </output>").output == "x </reflection> y </output>"
    answer = answer_of("<thinking>t</reflection></thinking><output>o</output>")
    assert (answer.thinking, answer.output) == ("t</reflection>", "o")


def test_separate_sections_of_a_channel_are_joined_by_a_blank_line():
    answer = answer_of("first part <thinking>t</thinking> second part <thinking>u</thinking>")
    assert (answer.thinking, answer.output) == ("t\n\nu", "first part\n\nsecond part")


def test_unknown_tags_are_text():
    assert answer_of("<output>Use <div> and <think> here</output>").output == \
        "Use <div> and <think> here"
    assert answer_of("<thinking><step>1</step></thinking>").thinking == "<step>1</step>"


def test_tags_inside_code_in_the_output_are_text():
    text = ("<output>Wrap it in `</output>` tags:\n```xml\n<output>\n</output>\n```\ndone"
            "</output>")
    assert answer_of(text).output == \
        "Wrap it in `</output>` tags:\n```xml\n<output>\n</output>\n```\ndone"
    assert answer_of("<thinking>the `<output>` tag</thinking>").thinking == "the `<output>` tag"


def test_inline_code_span_ends_at_the_line_end():
    answer = answer_of("<thinking>a stray ` backtick\n</thinking><output>ok</output>")
    assert (answer.thinking, answer.output) == ("a stray ` backtick", "ok")


def test_output_opens_even_when_thinking_was_not_closed():
    answer = answer_of("<thinking>t<reflection>r<output>o</output>")
    assert (answer.thinking, answer.reflections, answer.output) == ("t", ["r"], "o")


def test_think_format_with_and_without_the_opening_tag():
    answer = answer_of("<think>\nreasoning\n</think>\n\nThe answer.", TagFormat.THINK)
    assert (answer.thinking, answer.output) == ("reasoning", "The answer.")
    answer = answer_of("reasoning\n</think>\n\nThe answer.", TagFormat.THINK, prefilled=True)
    assert (answer.thinking, answer.output) == ("reasoning", "The answer.")
    answer = answer_of("No thinking at all.", TagFormat.THINK)
    assert (answer.thinking, answer.output) == ("", "No thinking at all.")
    assert answer_of("<thinking>x</thinking>", TagFormat.THINK).output == "<thinking>x</thinking>"


def test_plain_format_is_all_output():
    assert parse("<thinking>x</thinking>", TagFormat.PLAIN) == [
        ChannelEvent(OPEN, OUT), ChannelEvent(TEXT, OUT, "<thinking>x</thinking>"),
        ChannelEvent(CLOSE, OUT)]


def test_auto_format_follows_the_first_tag():
    parser = ReflectionParser(TagFormat.AUTO)
    parser.feed("<think>a</think>b")
    assert parser.tag_format == TagFormat.THINK
    answer = answer_of("<thinking>a<reflection>r</reflection></thinking><output>b</output>",
                       TagFormat.AUTO)
    assert (answer.thinking, answer.reflections, answer.output) == ("a", ["r"], "b")
    answer = answer_of("<think>a</think><output>b</output>", TagFormat.AUTO)
    assert answer.output == "<output>b</output>"
    assert answer_of("plain text", TagFormat.AUTO).output == "plain text"


def test_prefilled_thinking_starts_inside_thinking():
    answer = answer_of("reasoning</thinking><output>x</output>", prefilled=True)
    assert (answer.thinking, answer.output) == ("reasoning", "x")


def test_control_characters_and_markup_pass_through_unchanged():
    text = "<output>\x1b[31mred\x1b[0m [bold]b[/bold] \x07\r</output>"
    assert answer_of(text).output == "\x1b[31mred\x1b[0m [bold]b[/bold] \x07"


SAMPLES = [
    "<thinking>\nA <reflection>B</reflection> C\n</thinking>\n<output>\n`x` ```\n<output>\n```"
    "\n</output> tail",
    "<think>x</think> y <think>z",
    "``</output>`` <thinking>\n\n</thinking><output>```py\n</output>\n```</output>",
    " \n<reflection>r</reflection><output></output>  <thinking> t </thinking>",
    "reasoning \n</think>\n\nanswer </think> tail",
    "a <reflection>r</reflection> b</thinking><output>o</output></thinking>",
    "<|channel|>analysis<|message|>think<|end|><|start|>assistant<|channel|>final<|message|>"
    "out`<|end|>`<|return|>",
    "<|channel|>commentary to=functions.f <|constrain|>json<|message|>{}<|call|>",
    "[THINK]a [/THINK]b [[r]]c[[/r]] <seed:think>d <seed:cot_budget_reflect>e"
    "</seed:cot_budget_reflect></seed:think>",
    "<thought>\nx</thought> <think>y</think><response>z</response> Here is my response: w",
    "Here is my thought process: p Here is my response: q",
]
PIECES = ["<thinking>", "</thinking>", "<reflection>", "</reflection>", "<output>", "</output>",
          "<think>", "</think>", "<", ">", "/", "`", "```", "\n", " ", "a", "b c", "<thin",
          "king>", "é", "ش", "\t", "<out", "<|channel|>", "analysis", "final", "<|message|>",
          "<|end|>", "<|start|>", "assistant", "<|constrain|>", "<|call|>", "<|", "[THINK]",
          "[/THINK]", "[", "[[r]]", "[[/r]]", "<seed:think>", "</seed:think>", "<thought>",
          "</thought>", "<response>", "</response>", "Here is my response:",
          "Here is my thought process:", "Here is"]
# every family, and a pair of tags a user named
FORMATS = [TagFormat(name) for name in FORMAT_NAMES] + [TagFormat.think_tags("[[r]],[[/r]]")]


@settings(max_examples=400, deadline=None)
@given(
    text=st.one_of(st.sampled_from(SAMPLES),
                   st.lists(st.sampled_from(PIECES), max_size=40).map("".join),
                   st.text(alphabet="<>/`thinkgrefloup|[]: \n", max_size=60)),
    cuts=st.lists(st.integers(min_value=1, max_value=200), max_size=30),
    fmt=st.sampled_from(FORMATS),
    prefilled=st.booleans(),
)
def test_any_chunking_gives_the_events_of_parsing_whole(text, cuts, fmt, prefilled):
    cuts = [c for c in cuts if c < len(text)]
    assert parse(text, fmt, prefilled, cuts) == parse(text, fmt, prefilled)


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=80).filter(lambda t: "<" not in t and "[" not in t),
       fmt=st.sampled_from(FORMATS))
def test_text_without_tags_is_never_lost(text, fmt):
    """With no tag possible, every non-whitespace character comes out, in order, as output."""
    events = parse(text, fmt)
    assert {e.channel for e in events} <= {OUT}
    emitted = "".join(e.text for e in events)
    assert emitted == text.strip()


RECLASSIFY = EventKind.RECLASSIFY


def test_thinking_closed_without_being_opened_was_thinking():
    """QwQ/R1 behind a template that opened <think> where we cannot see it."""
    assert parse("Reasoning here.\n</think>\n\nThe answer.", TagFormat.THINK) == [
        ChannelEvent(OPEN, OUT), ChannelEvent(TEXT, OUT, "Reasoning here."),
        ChannelEvent(RECLASSIFY, T, "</think>"), ChannelEvent(CLOSE, T),
        ChannelEvent(OPEN, OUT), ChannelEvent(TEXT, OUT, "The answer."), ChannelEvent(CLOSE, OUT)]
    for fmt in (TagFormat.THINK, TagFormat.AUTO):
        answer = answer_of("Reasoning here.\n</think>\n\nThe answer.", fmt)
        assert (answer.thinking, answer.output) == ("Reasoning here.", "The answer.")
    answer = answer_of("Check: 2+2.<reflection>No, 2+3.</reflection> So 5.</thinking>"
                       "<output>5</output>", TagFormat.REFLECTION)
    assert (answer.thinking, answer.reflections, answer.output) == \
        ("Check: 2+2.\n\nSo 5.", ["No, 2+3."], "5")
    parser = ReflectionParser(TagFormat.AUTO)
    parser.feed("r</thinking>o")
    assert parser.tag_format == TagFormat.REFLECTION


def test_a_closing_tag_after_the_answer_began_stays_text():
    answer = answer_of("<think>t</think>The answer.</think> more", TagFormat.THINK)
    assert (answer.thinking, answer.output) == ("t", "The answer.</think> more")
    answer = answer_of("<output>o </thinking> p</output>", TagFormat.REFLECTION)
    assert answer.output == "o </thinking> p"
    assert answer_of("x </think> y", TagFormat.PLAIN).output == "x </think> y"
    prefilled = answer_of("t</think>a</think>b", TagFormat.THINK, prefilled=True)
    assert (prefilled.thinking, prefilled.output) == ("t", "a</think>b")


def test_reclassified_pieces_count_as_reasoning():
    answer, parser = Answer(), ReflectionParser(TagFormat.THINK)
    for piece in ["one ", "two ", "three", "</think>", "answer"]:
        events = parser.feed(piece)
        answer.add_raw(piece, parser.channel)
        for event in events:
            answer.apply(event)
    for event in parser.finish():
        answer.apply(event)
    assert (answer.thinking, answer.output) == ("one two three", "answer")
    assert answer.reasoning_tokens == 4  # the three pieces of thinking and its closing tag
