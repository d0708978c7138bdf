"""A stored answer keeps where each reflection came in its thinking, so a reopened session's
panes are laid out from what was stored: the same panes, markers and corrections as the
answer had when it streamed, without reading its raw text again."""

from __future__ import annotations

import pytest

from reflectchat.chat.conversation import Turn
from reflectchat.engine.base import FinishReason, GenerationStats, TagFormat
from reflectchat.paths import store_file
from reflectchat.reflection.answer import Answer
from reflectchat.reflection.corrections import corrections_of
from reflectchat.store.records import SessionMeta, StoredMessage
from reflectchat.store.session_store import SessionStore
from reflectchat.store.turns import answer_message, conversation_from, user_message
from reflectchat.ui.pane_text import panes

RAW = ("<thinking>\n\n  I add 2 and 2 and get 5.<reflection>2 + 2 is 4, not 5.</reflection> So "
       "4. Then 4 * 3 is 13.<reflection>4 * 3 is 12.</reflection>\nSo 12.</thinking>"
       "<output>12</output>")


def shown(answer: Answer) -> dict:
    """The panes' text; the thinking's blank start is not kept (the store strips it)."""
    return {c: text.strip() for c, text in panes(answer, corrections_of(answer)).items()}


def reopened(message: StoredMessage) -> Answer:
    store = SessionStore.open(store_file())
    session, _ = store.start_session("t", SessionMeta("m"), [StoredMessage("user", "q"),
                                                             message])
    [turn] = conversation_from(store.session(session), store.messages(session)).turns
    store.close()
    return turn.answer


def streamed() -> Turn:
    return Turn("q", TagFormat.REFLECTION, Answer.from_raw(RAW, TagFormat.REFLECTION))


def padded() -> Turn:
    """An answer whose thinking starts with blank lines (stored stripped: its marks move)."""
    thinking = "\n\n  I add 2 and 2 and get 5. So 4. Then 4 * 3 is 13.\nSo 12.\n"
    marks = [thinking.index(" So 4"), thinking.index("\nSo 12")]
    return Turn("q", TagFormat.REFLECTION, Answer(thinking, ["2 + 2 is 4, not 5.",
                                                             "4 * 3 is 12."], "12", RAW,
                                                  marks=marks))


@pytest.mark.parametrize("make", [streamed, padded])
def test_a_reopened_answer_has_the_marks_and_panes_it_streamed_with(make):
    turn = make()
    assert len(turn.answer.marks) == 2
    answer = reopened(answer_message(turn, GenerationStats(finish_reason=FinishReason.STOP)))
    assert len(answer.marks) == len(answer.reflections) == 2  # laid out as stored
    assert shown(answer) == shown(turn.answer)  # the same text, each marker in its place
    assert [c.before for c in corrections_of(answer)] == \
        [c.before for c in corrections_of(turn.answer)]


@pytest.mark.parametrize("marks", [["3"], [40, 3], [0, 10**9], [True, 3], None, 7, [-1, 3],
                                   [3]])
def test_marks_that_do_not_fit_are_not_used_and_the_raw_text_is_read_again(marks):
    message = answer_message(streamed(), GenerationStats(finish_reason=FinishReason.STOP))
    message.stats["marks"] = marks
    answer = reopened(message)
    assert answer.marks == []  # stored_panes reads the raw text again: the old sessions' way
    again = Answer.from_raw(answer.raw, TagFormat.REFLECTION)
    assert panes(again, corrections_of(again)) == \
        panes(streamed().answer, corrections_of(streamed().answer))


def test_a_user_message_and_a_session_without_marks_still_open():
    message = answer_message(streamed(), GenerationStats(finish_reason=FinishReason.STOP))
    del message.stats["marks"]
    assert reopened(message).marks == []
    assert user_message(streamed()).raw == "q"
