"""Each answer's facts per channel (tokens, time, when the output began) and what each
reflection corrected, from real parser events."""

from __future__ import annotations

import pytest

from reflectchat.engine.base import TagFormat
from reflectchat.reflection.answer import Answer
from reflectchat.reflection.corrections import corrections, sentences
from reflectchat.reflection.events import Channel
from reflectchat.reflection.facts import ChannelFacts, duration_text, facts_text
from reflectchat.reflection.parser import ReflectionParser

REFLECTED = ("<thinking>\nThe list has 4 items. So the total is 9.\n<reflection>\nI added wrong: "
             "4 + 6 is 10.\n</reflection>\nThe total is 10. Done.\n</thinking>\n"
             "<output>\nTen.\n</output>")


def stream(pieces: list[tuple[str, float]], tag_format: TagFormat, prefilled: bool = False,
           start: float = 100.0) -> Answer:
    """Feed (piece, arrival time) pairs through the real parser, as `channel_events` does."""
    answer, parser = Answer(), ReflectionParser(tag_format, prefilled)
    answer.facts.start = start
    for piece, at in pieces:
        events = parser.feed(piece)
        answer.add_raw(piece, parser.channel, at)
        for event in events:
            answer.apply(event)
    for event in parser.finish():
        answer.apply(event)
    return answer


def test_each_piece_counts_to_its_channel_with_the_time_since_the_one_before():
    answer = stream([("<thinking>", 102.0), ("a", 102.5), ("<reflection>", 103.0),
                     ("no", 104.0), ("</reflection>", 104.2), ("b", 104.4),
                     ("</thinking><output>", 104.5), ("x", 105.0), ("y", 106.0)],
                    TagFormat.REFLECTION)
    facts = answer.facts
    assert facts.wait_s == pytest.approx(2.0)  # the prompt's processing
    # a piece counts where the parser is once it is read: "</reflection>" is thinking again
    assert facts.tokens == {"thinking": 4, "reflection": 2, "output": 3}
    assert facts.seconds == {"thinking": pytest.approx(0.9), "reflection": pytest.approx(1.5),
                             "output": pytest.approx(1.6)}
    assert facts.first_output_s == pytest.approx(4.5)
    assert answer.reasoning_tokens == 6
    stats = answer.to_dict("stop", {"completion_tokens": 10})["stats"]
    assert stats["channels"]["output"] == {"tokens": 3, "seconds": pytest.approx(1.6)}
    assert stats["first_output_s"] == pytest.approx(4.5) and stats["completion_tokens"] == 10


def test_output_that_turns_out_to_be_thinking_moves_its_facts():
    """A template opened <think> itself: what looked like output was thinking."""
    answer = stream([("weighing", 101.0), (" it", 102.0), ("</think>", 103.0),
                     ("Answer.", 105.0)], TagFormat.AUTO)
    facts = answer.facts
    assert facts.tokens == {"thinking": 3, "reflection": 0, "output": 1}
    assert facts.seconds["thinking"] == pytest.approx(2.0)
    assert facts.first_output_s == pytest.approx(5.0)  # the real output, not the first piece


def test_stored_facts_are_read_back_and_hostile_values_ignored():
    facts = ChannelFacts()
    facts.tokens.update(thinking=5, output=2)
    facts.seconds.update(thinking=1.25)
    facts.first_output_s = 3.0
    again = ChannelFacts.from_dict(facts.to_dict())
    assert (again.tokens, again.seconds["thinking"], again.first_output_s) == \
        (facts.tokens, 1.25, 3.0)
    hostile = ChannelFacts.from_dict({"channels": {"thinking": {"tokens": "9", "seconds": -1},
                                                   "output": {"tokens": 2.5}, "reflection": []},
                                      "first_output_s": float("nan"), "wait_s": True})
    assert hostile.tokens == {"thinking": 0, "reflection": 0, "output": 0}
    assert hostile.first_output_s is None and hostile.wait_s is None
    old = ChannelFacts.from_dict({"reasoning_tokens": 40})  # stored before channels
    assert old.reasoning_tokens == 40
    assert ChannelFacts.from_dict(None).tokens["output"] == 0


def test_facts_read_as_one_line():
    facts = ChannelFacts()
    facts.tokens.update(thinking=812, reflection=40, output=120)
    facts.seconds.update(thinking=12.4, reflection=3.1, output=4.0)
    facts.first_output_s = 18.2
    assert facts_text(facts) == ("thinking 812 tokens in 12 s · reflection 40 in 3.1 s · "
                                 "output 120 in 4.0 s · output after 18 s")
    assert duration_text(125) == "2 min 5 s" and duration_text(0.42) == "0.4 s"
    assert facts_text(ChannelFacts()) == ""


def test_a_correction_pairs_the_claim_before_with_the_claim_after():
    [found] = corrections(REFLECTED, TagFormat.REFLECTION)
    assert (found.n, found.before, found.after) == (1, "So the total is 9.", "The total is 10.")
    assert found.reflection == "I added wrong: 4 + 6 is 10."


def test_a_reflection_at_the_end_of_thinking_is_answered_by_the_output():
    raw = ("<thinking>\nIt is Lima.\n<reflection>\nYes, Lima is right.\n</reflection>\n"
           "</thinking>\n<output>\nLima is the capital.\n</output>")
    [found] = corrections(raw, TagFormat.REFLECTION)
    assert (found.before, found.after) == ("It is Lima.", "Lima is the capital.")


def test_a_reflection_first_has_no_claim_before_and_plain_answers_have_none():
    raw = "<thinking>\n<reflection>\nCareful.\n</reflection>\nStart over.\n</thinking>"
    [found] = corrections(raw, TagFormat.REFLECTION)
    assert (found.before, found.after) == ("", "Start over.")
    assert corrections("<think>\nhm\n</think>\n\nAnswer.", TagFormat.THINK) == []
    assert corrections("", TagFormat.REFLECTION) == []


def test_sentences_split_at_stops_blank_lines_and_list_items():
    assert sentences("One. Two? Three!\n\nFour\n- five\n1. six") == \
        ["One.", "Two?", "Three!", "Four", "- five", "1. six"]
    assert sentences("Pi is 3.14 here. Next") == ["Pi is 3.14 here.", "Next"]
    long = corrections("<thinking>\n" + "word " * 200 + "\n<reflection>\nno\n</reflection>\n"
                       "</thinking>", TagFormat.REFLECTION)[0].before
    assert len(long) == 300 and long.endswith("…")


def test_channel_enum_and_facts_agree():
    assert set(ChannelFacts().tokens) == {c.value for c in Channel}
