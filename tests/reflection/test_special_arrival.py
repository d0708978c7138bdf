"""A marker made of special tokens moves the parser only where it arrived as those tokens: a
model explaining `<think>` tags in prose writes them as plain pieces, and they stay text, live,
in the stored session and in the panes of a reopened one. A server's text carries no such
marks, so its markers are matched as text."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from reflectchat.chat.conversation import Turn
from reflectchat.demo.scripted_model import Control, Piece, Script
from reflectchat.engine.base import TagFormat
from reflectchat.engine.special_marks import SpecialMarks
from reflectchat.reflection.answer import Answer
from reflectchat.reflection.events import Channel
from reflectchat.reflection.parser import parse_whole
from reflectchat.store.session_store import SessionStore
from reflectchat.store.turns import conversation_from

# the thinking is marked by <think> and </think> as special tokens; the answer spells both as
# plain pieces, as a model explaining them does
EXPLAINING = Script("<|go|>", [
    Control("<think>"), "The user asks what the tags are.", Control("</think>"),
    "Reasoning models open their thinking with ", Piece("<"), Piece("think"), Piece(">"),
    " and close it with ", Piece("</"), Piece("think>"), ", then answer.",
])
OUTPUT = "Reasoning models open their thinking with <think> and close it with </think>, " \
         "then answer."


def ask(model: Path, *args: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "reflectchat", "ask", "--json", "--model",
                           str(model), "--temperature", "0", *args, "What are think tags?"],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_think_tags_written_in_prose_stay_in_the_answer(make_model):
    answer = ask(make_model(EXPLAINING))
    assert answer["thinking"] == "The user asks what the tags are."
    assert answer["output"] == OUTPUT
    assert answer["raw"].count("<think>") == 2
    # read as text, the same raw would have opened the thinking again
    as_text = Answer.from_raw(answer["raw"], TagFormat.THINK)
    assert as_text.output != OUTPUT


def test_a_stored_answer_is_read_again_with_its_marks(make_model):
    answer = ask(make_model(EXPLAINING))
    store = SessionStore.open()
    try:
        info = store.session(answer["session"])
        conversation = conversation_from(info, store.messages(info.id))
    finally:
        store.close()
    turn: Turn = conversation.turns[-1]
    assert turn.answer.special is not None
    assert turn.answer.output == OUTPUT  # as stored
    reread = Answer.from_raw(turn.answer.raw, turn.tag_format, turn.prefilled,
                             turn.answer.special)  # as a reopened session's panes read it
    assert (reread.thinking, reread.output) == ("The user asks what the tags are.", OUTPUT)


def test_marks_say_which_markers_count_and_survive_a_round_trip():
    raw = "<think>a</think>b <think> c"
    marks = SpecialMarks({0, 8}, {"<think>": (0,), "</think>": (0,)})
    events = parse_whole(raw, TagFormat.THINK, special=marks)
    text = "".join(e.text for e in events if e.channel is Channel.OUTPUT)
    assert text == "b <think> c"
    again = SpecialMarks.from_dict(json.loads(json.dumps(marks.to_dict())))
    assert again is not None and again.starts == {0, 8} and again.known == marks.known
    for damaged in (None, [], {"at": "x", "parts": {}}, {"at": [-1], "parts": {}},
                    {"at": [1], "parts": {"<think>": ["0"]}}):
        assert SpecialMarks.from_dict(damaged) is None
    # no marks (a server's text): markers are text matches, as before
    plain = parse_whole(raw, TagFormat.THINK)
    assert "".join(e.text for e in plain if e.channel is Channel.OUTPUT) == "b"
