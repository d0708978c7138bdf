"""A GGUF is a program from whoever made it: its chat template runs under a time, size and
memory bound, at detection and at every render, and past a bound the built-in template takes
over with one sentence; a vocabulary of 300,000 special tokens loads about as fast as
llama-cpp-python alone loads it. Real llama.cpp on generated GGUFs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from support.load_time import load_s, write_special_tokens_gguf

from reflectchat.demo.scripted_model import Script, chat_template
from reflectchat.engine import sandbox
from reflectchat.engine.base import ChatMessage, FinishReason, Sampling
from reflectchat.engine.errors import EngineError
from reflectchat.engine.llama import EngineSettings, LlamaEngine
from reflectchat.engine.prompt import OWN

SCRIPT = Script("<|go|>", ["<think>", "a short thought", "</think>", "The answer."])
LOOPS = ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}")
WRITES_GIGABYTES = "{% for i in range(100000) %}{{ 'x' * 20000 }}{% endfor %}"
NEEDS_GIGABYTES = "{{ 'x' | center(3000000000) }}"


def engine_for(model: Path) -> LlamaEngine:
    return LlamaEngine(model, EngineSettings(n_ctx=512, n_threads=1))


QUICK_S = 2.0  # the render's time bound in these tests (10 s in use): the loop runs far longer


@pytest.mark.parametrize(("bomb", "said"), [
    (LOOPS, f"it ran longer than {QUICK_S:g} s"),
    (WRITES_GIGABYTES, "it wrote more than 16 million characters"),
    pytest.param(NEEDS_GIGABYTES, "it needed more than 1024 MiB of memory",
                 marks=pytest.mark.skipif(not sys.platform.startswith("linux"),
                                          reason="the memory bound is Linux's RLIMIT_AS")),
])
def test_a_template_past_its_bounds_is_stopped_at_load_and_a_builtin_one_used(make_model,
                                                                              bomb, said,
                                                                              monkeypatch):
    monkeypatch.setattr(sandbox, "TIME_LIMIT_S", QUICK_S)
    engine = engine_for(make_model(SCRIPT, template=bomb + chat_template([], SCRIPT.trigger)))
    try:
        assert engine.template != OWN
        assert engine.load_note is not None
        assert f"The chat template in model.gguf was stopped: {said}." in engine.load_note
        assert f"Using llama.cpp's {engine.template} template instead" in engine.load_note
        answer = engine.generate([ChatMessage("user", "hi")], Sampling(max_tokens=8))
        "".join(answer)
        assert answer.stats.finish_reason in (FinishReason.STOP, FinishReason.LENGTH)
    finally:
        engine.close()


def test_a_template_that_explodes_later_in_a_chat_is_replaced_at_that_turn(make_model):
    later = "{% if messages | length > 2 %}" + WRITES_GIGABYTES + "{% endif %}"
    engine = engine_for(make_model(SCRIPT, template=later + chat_template([], SCRIPT.trigger)))
    try:
        assert engine.template == OWN and engine.load_note is None
        first = engine.generate([ChatMessage("user", "hi")], Sampling(max_tokens=64))
        assert "".join(first) == SCRIPT.text  # the model's own template: the script plays
        assert first.stats.reasoning_note is None
        chat = [ChatMessage("user", "hi"), ChatMessage("assistant", SCRIPT.text),
                ChatMessage("user", "and then?")]
        second = engine.generate(chat, Sampling(max_tokens=8))
        "".join(second)
        assert second.stats.reasoning_note is not None
        assert "chat template in model.gguf was stopped: it wrote more than 16 million " \
            "characters" in second.stats.reasoning_note
        assert engine.template != OWN
        third = engine.generate(chat, Sampling(max_tokens=8))
        "".join(third)
        assert third.stats.reasoning_note is None  # said once
    finally:
        engine.close()


def test_a_template_error_in_a_chat_is_still_one_sentence_naming_the_template(make_model):
    raises = "{% if messages | length > 1 %}{{ raise_exception('roles must alternate') }}" \
             "{% endif %}" + chat_template([], SCRIPT.trigger)
    engine = engine_for(make_model(SCRIPT, template=raises))
    try:
        assert engine.template == OWN
        chat = [ChatMessage("user", "hi"), ChatMessage("user", "again")]
        with pytest.raises(EngineError, match=rf"The chat template \({OWN}\) failed on this "
                                              r"conversation: roles must alternate;"):
            engine.generate(chat, Sampling(max_tokens=8))
    finally:
        engine.close()


@pytest.mark.parametrize(("template", "recognised"), [
    # MiroThinker v1's kind of mistake: a block left open (it does not compile)
    ("{% for m in messages %}<|im_start|>{{ m.role }}\n{% if m.content %}{{ m.content }}"
     "<|im_end|>\n{% endfor %}", "chatml"),
    ("{{ raise_exception('this template needs tools') }}<|start_header_id|>user"
     "<|end_header_id|>\n\n<|eot_id|>",
     "llama3"),
    ("{% for m in messages %}{{ m.content }}{% endif %}", None),
])
def test_a_template_that_cannot_render_a_chat_gives_way_to_the_one_its_text_names(
        make_model, template, recognised):
    engine = engine_for(make_model(SCRIPT, template=template))
    try:
        assert engine.template == (recognised or "llama2")  # else the architecture's
        assert engine.load_note is not None
        assert engine.load_note.startswith("The chat template in model.gguf cannot be used: ")
        how = "recognised in the template's text" if recognised else \
            "chosen for its architecture (llama)"
        assert f"Using llama.cpp's {engine.template} template instead ({how}); --template " \
               "NAME picks another." in engine.load_note
        answer = engine.generate([ChatMessage("user", "hi")], Sampling(max_tokens=8))
        "".join(answer)
        assert answer.stats.error is None
    finally:
        engine.close()
    named = LlamaEngine(make_model(SCRIPT, template=template, name="again.gguf"),
                        EngineSettings(n_ctx=512, n_threads=1, template="chatml"))
    try:  # --template loads it (llama-cpp-python's Llama() compiled the template first)
        assert named.template == "chatml" and named.load_note is not None
    finally:
        named.close()


def test_300000_special_tokens_load_within_twice_llama_cpp_pythons_own_time(tmp_path):
    path = write_special_tokens_gguf(tmp_path / "special.gguf", 300_000)
    alone = min(load_s(path, "llama-cpp-python") for _ in range(2))  # the quicker of two
    ours = min(load_s(path, "reflectchat") for _ in range(2))
    assert ours < 2 * alone, f"reflectchat {ours:.2f} s, llama-cpp-python {alone:.2f} s"
