"""What goes back to the model on a resumed session: earlier turns, trimmed to fit."""

from __future__ import annotations

import threading

from reflectchat.chat.answer_run import AnswerRun
from reflectchat.chat.conversation import Conversation, Turn, answer_reserve, fit_context
from reflectchat.demo.scripted_model import Control, Script
from reflectchat.engine.base import FinishReason, GenerationStats, Sampling, TagFormat
from reflectchat.engine.llama import EngineSettings, LlamaEngine
from reflectchat.reflection.answer import Answer
from reflectchat.store.recorder import SessionRecorder
from reflectchat.store.records import SessionMeta
from reflectchat.store.session_store import SessionStore
from reflectchat.store.turns import conversation_from

SCRIPT = Script("<|go|>", [Control("<thinking>"), "Reasoning about it. ", Control("<reflection>"),
                           "Wait, recheck. ", Control("</reflection>"), Control("</thinking>"),
                           Control("<output>"), "Forty-two.", Control("</output>")])


def finished_turn(n: int) -> Turn:
    raw = f"<thinking>thought {n}</thinking><output>answer {n}</output>"
    return Turn(f"question {n} " + "word " * 30, TagFormat.REFLECTION,
                Answer.from_raw(raw, TagFormat.REFLECTION), stats=GenerationStats())


def test_old_turns_are_dropped_until_the_prompt_fits(make_model):
    engine = LlamaEngine(make_model(SCRIPT), EngineSettings(n_ctx=512))
    conversation = Conversation("You are careful.", Sampling(), [finished_turn(n)
                                                                 for n in range(12)])
    messages = conversation.messages_for("the new question")
    assert engine.count_tokens(messages) > 512
    limit = 512 - answer_reserve(512, Sampling())
    fitted, dropped = fit_context(messages, engine.count_tokens, limit)
    assert dropped > 0 and engine.count_tokens(fitted) <= limit
    assert fitted[0].content == "You are careful." and fitted[-1].content == "the new question"
    assert fitted[-2].content == "answer 11"  # the newest turns stay, outputs only
    assert len(fitted) == 1 + 2 * (12 - dropped) + 1
    engine.close()


def test_with_reasoning_the_model_gets_its_whole_answer_back():
    turn = finished_turn(1)
    conversation = Conversation("", Sampling(), [turn])
    assert conversation.messages_for("next")[1].content == "answer 1"
    conversation.with_reasoning = True
    assert conversation.messages_for("next")[1].content == turn.answer.raw
    turn.prefilled = True  # the template opened the thinking: its opener goes back too
    assert conversation.messages_for("next")[1].content.startswith("<thinking>\n<thinking>")
    turn.tag_format = TagFormat("thought")  # EXAONE Deep's
    assert conversation.messages_for("next")[1].content.startswith("<thought>\n<thinking>")
    turn.tag_format = TagFormat("harmony")  # gpt-oss: its markers cannot travel as text
    assert conversation.messages_for("next")[1].content == "answer 1"


def test_a_recorded_conversation_resumes_as_it_was(make_model, tmp_path):
    engine = LlamaEngine(make_model(SCRIPT), EngineSettings(n_ctx=512))
    store = SessionStore.open(tmp_path / "s.db")
    meta = SessionMeta("test", None, "Be brief.", Sampling(temperature=0.0))
    recorder = SessionRecorder(store, meta)
    conversation = Conversation(meta.system_prompt, meta.sampling)
    for prompt in ("first", "second"):
        turn = Turn(prompt, TagFormat.REFLECTION)
        messages = conversation.messages_for(prompt)
        conversation.turns.append(turn)
        recorder.start_turn(turn)
        run = AnswerRun(engine, turn, messages, meta.sampling, threading.Event(), recorder)
        assert len(list(run.events())) > 0
        turn.stats = run.stats
    engine.close()
    assert recorder.session_id is not None
    info = store.session(recorder.session_id)
    resumed = conversation_from(info, store.messages(info.id))
    assert (resumed.system_prompt, resumed.sampling) == (meta.system_prompt, meta.sampling)
    assert [t.prompt for t in resumed.turns] == ["first", "second"]
    for old, new in zip(conversation.turns, resumed.turns, strict=True):
        assert new.answer.raw == old.answer.raw and new.answer.output == "Forty-two."
        assert new.answer.reflections == ["Wait, recheck."]
        assert new.stats and old.stats
        assert new.stats.finish_reason is FinishReason.STOP
        assert new.stats.completion_tokens == old.stats.completion_tokens
        assert new.answer.reasoning_tokens == old.answer.reasoning_tokens > 0
    assert resumed.messages_for("third") == conversation.messages_for("third")
    recorder.drop_last_turn()
    assert [t.prompt for t in conversation_from(info, store.messages(info.id)).turns] == \
        ["first"]
