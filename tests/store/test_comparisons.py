"""A comparison kept in the session store: both answers after one prompt, each with its
setup, the mark with side A's; read back as the conversation goes on (with the answer marked
better), exported and imported whole, searched, and robust to a damaged record."""

from __future__ import annotations

import json

from support.compared import answer, keep_comparison

from reflectchat.chat.comparison import Setup
from reflectchat.store.compared import comparisons
from reflectchat.store.session_store import SessionStore
from reflectchat.store.transfer import import_session, session_json, session_markdown
from reflectchat.store.turns import conversation_from

Q8 = Setup("Qwen3-8B Q8_0", effort="high")
Q4 = Setup("Qwen3-8B Q4_K_M", effort="low", thinking_budget=500, speculation="off")


def stored(store: SessionStore, session: int):
    return conversation_from(store.session(session), store.messages(session))


def test_the_conversation_goes_on_with_the_answer_marked_better(tmp_path):
    store = SessionStore.open(tmp_path / "s.db")
    recorder = keep_comparison(store, "What is 17 * 3?",
                               (answer("17 * 3 = 51.", "51"), answer("About 50.", "50")),
                               (Q8, Q4), None)
    session = recorder.session_id
    assert session is not None
    unmarked = stored(store, session).turns
    assert len(unmarked) == 1 and unmarked[0].answer.output == "51"  # unmarked: the first
    comparison = unmarked[0].comparison
    assert comparison is not None and comparison.choice is None
    assert comparison.setups == (Q8, Q4)
    comparison.choice = "b"
    recorder.mark(comparison)
    conversation = stored(store, session)
    turns = conversation.turns
    assert turns[0].answer.output == "50" and turns[0].comparison.choice == "b"
    assert turns[0].comparison.sides[0].answer.thinking == "17 * 3 = 51."
    # a follow-up sends answer B back to the model
    assert conversation.messages_for("Sure?")[-2].content == "50"
    store.close()


def test_both_answers_are_searchable_and_an_ordinary_turn_after_it_reads_as_before(tmp_path):
    store = SessionStore.open(tmp_path / "s.db")
    recorder = keep_comparison(store, "Name a prime", (answer("Small.", "seven"),
                                                       answer("Large.", "thirteen")),
                               (Q8, Q4), "tie")
    keep_comparison(store, "Another", (answer("x", "eleven"), answer("y", "nineteen")),
                    (Q4, Q8), "a", recorder)
    hits = store.search("thirteen")
    assert [(h.session_id, h.seq, h.channel) for h in hits] == [(recorder.session_id, 3,
                                                                 "output")]
    turns = stored(store, recorder.session_id).turns  # type: ignore[arg-type]
    assert [t.answer.output for t in turns] == ["seven", "eleven"]
    assert [t.comparison.choice for t in turns] == ["tie", "a"]
    found = comparisons(store)
    assert [(c.prompt, c.choice, c.a.setup, c.b.setup) for c in found] == [
        ("Name a prime", "tie", Q8, Q4), ("Another", "a", Q4, Q8)]
    store.close()


def test_a_json_export_imports_back_with_both_answers_and_the_mark(tmp_path):
    store = SessionStore.open(tmp_path / "s.db")
    recorder = keep_comparison(store, "2 + 2?", (answer("Add.", "4"), answer("Hm.", "5")),
                               (Q8, Q4), "a")
    info = store.session(recorder.session_id)  # type: ignore[arg-type]
    data = json.loads(json.dumps(session_json(info, store.messages(info.id))))
    copy = import_session(store, data)
    again = stored(store, copy).turns[0].comparison
    assert again is not None and again.choice == "a" and again.setups == (Q8, Q4)
    assert [t.answer.output for t in again.sides] == ["4", "5"]
    markdown = session_markdown(info, store.messages(info.id))
    assert "### Answer A: “Qwen3-8B Q8\\_0 · effort high”" in markdown
    assert "### Answer B: “Qwen3-8B Q4\\_K\\_M · effort low · budget 500 · spec off”" in markdown
    assert "*Marked: answer A better (Qwen3-8B Q8\\_0 · effort high).*" in markdown
    store.close()


def test_a_damaged_or_hostile_comparison_record_reads_as_ordinary_answers(tmp_path):
    store = SessionStore.open(tmp_path / "s.db")
    recorder = keep_comparison(store, "Q", (answer("a", "one"), answer("b", "two")), (Q8, Q4),
                               "b")
    session = recorder.session_id
    with store.reading() as db:  # another program's bytes: a setup that is not one
        db.execute("UPDATE messages SET stats = json_set(stats, '$.compare.setup', "
                   "json('[1, 2]')) WHERE seq = 3")
        db.commit()
    turns = stored(store, session).turns  # type: ignore[arg-type]
    assert len(turns) == 1 and turns[0].answer.output == "one" and turns[0].comparison is None
    assert comparisons(store) == []
    hostile = Setup.from_dict({"model": "x" * 10_000, "effort": "max", "thinking_budget": -1,
                               "speculation": "\x1b[31m"})
    assert hostile is not None and len(hostile.model) == 500
    assert (hostile.effort, hostile.thinking_budget, hostile.speculation) == (None, None, None)
    store.close()


def test_a_comparison_cut_off_by_a_killed_process_reads_back_as_two_interrupted_answers(
        tmp_path):
    from reflectchat.chat.comparison import Comparison
    from reflectchat.chat.conversation import Turn
    from reflectchat.engine.base import FinishReason, TagFormat
    from reflectchat.store.recorder import SessionRecorder
    from reflectchat.store.records import SessionMeta

    store = SessionStore.open(tmp_path / "s.db")
    recorder = SessionRecorder(store, SessionMeta(model="m"))
    turns = [Turn("Killed?", TagFormat.REFLECTION) for _ in range(2)]
    comparison = Comparison((Q8, Q4), turns)
    for turn in turns:
        turn.comparison = comparison
    recorder.start_comparison(comparison)  # the process dies before either answer ends
    store.close()
    again = SessionStore.open(tmp_path / "s.db")
    turn = stored(again, recorder.session_id).turns[0]  # type: ignore[arg-type]
    kept = turn.comparison
    assert kept is not None and kept.setups == (Q8, Q4) and kept.choice is None
    assert [t.stats.finish_reason for t in kept.sides] == [FinishReason.INTERRUPTED] * 2
    again.close()
