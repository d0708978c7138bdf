"""Loops: an answer repeating one span is stopped soon after the loop is clear, and text that
repeats legitimately (tables, similar lines of code, numbered lists, the demo's answers, long
real prose) never is. Tokens come from the real Llama 3 tokenizer (REFLECTCHAT_VOCAB_DIR, as in
test_real_tokenizers.py); characters, as a server's text is watched, need nothing."""

from __future__ import annotations

import os
from functools import cache
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reflectchat.demo.answers import SCRIPTS
from reflectchat.demo.long_answer import long_script
from reflectchat.engine.llama_cpp_model import LoadedModel
from reflectchat.engine.loops import CHARACTERS, TOKENS, LoopRule, LoopWatch, TextLoopWatch

VOCAB_DIR = os.environ.get("REFLECTCHAT_VOCAB_DIR")
ROOT = Path(__file__).resolve().parents[2]

TABLE = "| n | n² | n³ |\n|---|---|---|\n" + "".join(
    f"| {n} | {n * n} | {n ** 3} |\n" for n in range(1, 80))
CODE = "def table():\n" + "".join(
    f"    row_{i} = compute(row_{i - 1}, weight=0.5)\n" for i in range(1, 80))
NUMBERED = "".join(f"{i}. Check the value again.\n" for i in range(1, 120))
SAME_ROWS = "| - | - | - |\n" * 3  # a few identical rows: short, not a loop
DEMO = [script.text for script in SCRIPTS] + [long_script().text]
PROSE = [(ROOT / "README.md").read_text(encoding="utf-8"),
         *(p.read_text(encoding="utf-8") for p in sorted((ROOT / "docs").glob("*.md")))]
ZEROS = "\n".join(" ".join("0" * 32) for _ in range(32))
REPEATS = [  # legitimate repetition that never varies (issue 34)
    f"The zero matrix:\n\n{ZEROS}\n\nEvery entry is zero.",
    f"In code:\n```\n{ZEROS}\n```\n",
    "$$\\begin{bmatrix}\n" + "\\\\\n".join(" & ".join("0" * 32) for _ in range(32))
    + "\n\\end{bmatrix}$$",
    "Below the title:\n" + "=" * 2000 + "\nand under it a rule of dashes:\n" + "-" * 2000,
    "| Day | Hours | Project |\n|---|---|---|\n" + "|  |  |  |\n" * 300,
    "| a | b | c |\n|---|---|---|\n" + "| 0 | 0 | 0 |\n" * 300,
    "The list: " + ", ".join("0" * 500) + ".",
    "Zeros:\n" + "- 0\n" * 500,
    "  /\\_/\\  \n ( o.o ) \n  > ^ <  \n" + "~~~~~~~~~~~~~\n" * 200,
    "Verse one about the river.\n\n" + ("Row, row, row your boat,\nGently down the stream,\n"
                                          "Merrily, merrily, merrily, merrily,\n"
                                          "Life is but a dream.\n\n") * 3 + "The end.",
]
LEGITIMATE = [TABLE, CODE, NUMBERED, SAME_ROWS, *DEMO, *PROSE, *REPEATS]
LINES = "I will not talk in class.\n"
ASKED = "Write 'I will not talk in class.' 100 times, one per line."
# a reasoning model going round: the same paragraph of about 40 tokens, again and again
PARAGRAPH = ("Wait, let me recheck the second step: 17 times 23 is 391, and adding 12 gives "
             "403, so the total stays 403 and I should verify it once more. ")


@cache
def llama3() -> LoadedModel:
    return LoadedModel.vocab_only(str(Path(VOCAB_DIR or "") / "ggml-vocab-llama-bpe.gguf"))


def tokens(text: str) -> list[int]:
    return llama3().vocab.tokenize(text, special=False)


def first_stop(items: list, watch: LoopWatch) -> int | None:
    return next((i for i, item in enumerate(items) if watch.feed(item)), None)


@pytest.mark.skipif(not VOCAB_DIR, reason="REFLECTCHAT_VOCAB_DIR is not set")
@pytest.mark.parametrize("text", LEGITIMATE, ids=lambda t: t[:24])
def test_legitimate_repetition_is_never_stopped_by_tokens(text):
    assert first_stop(tokens(text), token_watch()) is None


@pytest.mark.skipif(not VOCAB_DIR, reason="REFLECTCHAT_VOCAB_DIR is not set")
def token_watch(asked: str = "") -> LoopWatch:
    return LoopWatch(TOKENS, llama3().vocab.text_of, asked)


@pytest.mark.skipif(not VOCAB_DIR, reason="REFLECTCHAT_VOCAB_DIR is not set")
def test_a_paragraph_going_round_is_stopped_in_its_fourth_copy():
    once, start = tokens(PARAGRAPH), tokens("Let me compute 17 times 23 plus 12. ")
    answer = start + tokens(PARAGRAPH * 20)
    stop = first_stop(answer, token_watch())
    assert stop is not None and stop <= len(start) + 4 * len(once) + 2


@pytest.mark.skipif(not VOCAB_DIR, reason="REFLECTCHAT_VOCAB_DIR is not set")
def test_a_short_phrase_going_round_is_stopped_once_it_covers_160_tokens():
    answer = tokens("The capital of France is vuonna. " * 100)
    stop = first_stop(answer, token_watch())
    assert stop is not None and 150 <= stop < 200


def test_a_server_going_round_is_stopped_by_its_characters():
    text = "Intro. " + PARAGRAPH * 10
    stop = first_stop(list(text), LoopWatch(CHARACTERS))
    # clear at four copies covering 640 characters: here in the fifth copy of 140
    assert stop is not None and stop < len("Intro. ") + 5 * len(PARAGRAPH)


@pytest.mark.skipif(not VOCAB_DIR, reason="REFLECTCHAT_VOCAB_DIR is not set")
def test_a_line_the_user_asked_for_100_times_is_written_100_times_and_no_more():
    assert first_stop(tokens(LINES * 100), token_watch(ASKED)) is None
    stop = first_stop(tokens(LINES * 200), token_watch(ASKED))
    assert stop is not None and stop < len(tokens(LINES * 105))
    assert first_stop(tokens(LINES * 100), token_watch("Write it many times.")) is not None
    text_watch = TextLoopWatch(asked=ASKED)
    assert not text_watch.feed_text(LINES * 100)
    assert text_watch.feed_text(LINES * 100)


@pytest.mark.skipif(not VOCAB_DIR, reason="REFLECTCHAT_VOCAB_DIR is not set")
def test_layout_that_never_ends_is_stopped_in_the_end():
    answer = tokens("| 0 | 0 | 0 |\n" * 5000)
    stop = first_stop(answer, token_watch())
    assert stop is not None and TOKENS.layout_least - 1 <= stop < TOKENS.layout_least + 50


def test_a_server_going_round_is_stopped_at_the_same_character_by_the_text_watch():
    text = "Intro. " + PARAGRAPH * 10
    watch = TextLoopWatch()
    stop = next(i for i, ch in enumerate(text) if watch.feed_text(ch))
    assert stop == first_stop(list(text), LoopWatch(CHARACTERS))
    whole = TextLoopWatch()
    assert whole.feed_text(text)  # in one piece, across several steps of 256


@pytest.mark.parametrize("text", LEGITIMATE, ids=lambda t: t[:24])
def test_legitimate_repetition_is_never_stopped_by_the_text_watch(text):
    watch = TextLoopWatch()
    assert not any(watch.feed_text(text[at:at + 37]) for at in range(0, len(text), 37))


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet="ab c\u00e9\U0001f600", max_size=700),
       cuts=st.lists(st.integers(0, 700), max_size=12))
def test_the_text_watch_agrees_with_a_character_at_a_time(text, cuts):
    """Any text, cut anywhere (pieces over a step of 256 included), a rule small enough that
    a few letters make loops: the same verdict for every piece as one character at a time."""
    rule = LoopRule(longest_span=9, times=3, least=7, layout_least=20)
    one, many = LoopWatch(rule), TextLoopWatch(rule)
    bounds = sorted({0, len(text), *(c for c in cuts if c <= len(text))})
    for a, b in pairwise(bounds):
        expected = [one.feed(ch) for ch in text[a:b]]
        assert many.feed_text(text[a:b]) == any(expected)
