"""Families no pair of tags describes, found from what their templates write rather than from a
list: a Kimi-K3-style template (thinking and answer each wrapped in `<|open|>NAME<|sep|>` ...
`<|close|>NAME<|sep|>` inside a message wrapper, empty think blocks rendered, the thinking
opened by the generation prompt), a Gemma-4-style one (`<|channel>thought` ... `<channel|>`,
reasoning never rendered in a plain turn; the generation prompt writes an empty block when
thinking is off) and an Apriel-1.6-style one (the prompt pre-fills "Here are my reasoning
steps:" as text, "[BEGIN FINAL RESPONSE]" ends the thinking). The templates are written here
to behave as those families' do; the GGUFs carry their markers as special tokens. Each answer
lands in the right panes, through `ask --json`, with every wrapper gone from the output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.wrapped_families import (
    APRIEL,
    APRIEL_15_SCRIPTS,
    APRIEL_15_TEMPLATE,
    APRIEL_TEMPLATE,
    GEMMA,
    GEMMA_TEMPLATE,
    KIMI,
    KIMI_TEMPLATE,
)

from reflectchat.demo.scripted_model import Control, Piece, Script
from reflectchat.engine.base import TagFormat
from reflectchat.engine.llama import EngineSettings, LlamaEngine
from reflectchat.paths import config_file


def ask(model: Path, *args: str) -> tuple[dict, str]:
    done = subprocess.run([sys.executable, "-m", "reflectchat", "ask", "--no-save", "--json",
                           "--model", str(model), *args, "q"], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout), done.stderr


def found(model: Path) -> TagFormat:
    engine = LlamaEngine(model, EngineSettings(n_ctx=512))
    try:
        return engine.found_format.tag_format
    finally:
        engine.close()


def test_kimi_k3s_think_and_response_wrappers_are_found_and_removed(make_model):
    model = make_model(KIMI, template=KIMI_TEMPLATE)
    assert found(model) == TagFormat("tags", ("<|open|>think<|sep|>", "<|close|>think<|sep|>"),
                                     ("<|open|>response<|sep|>", "<|close|>"))
    answer, stderr = ask(model)
    assert "from the template's renders" in stderr
    assert (answer["thinking"], answer["output"]) == ("Two and two: four.", "It is 4.")
    assert "<|" not in answer["output"] and "sep" not in answer["output"]


def test_gemma_4s_channel_is_found_from_the_empty_block_that_turns_thinking_off(make_model):
    model = make_model(GEMMA, template=GEMMA_TEMPLATE)
    assert found(model) == TagFormat("tags", ("<|channel>thought", "<channel|>"))
    answer, _ = ask(model, "--effort", "high")  # thinking on: enable_thinking
    assert answer["thinking"] == "The sky scatters blue light."
    assert answer["output"] == "Because of Rayleigh scattering."


def test_apriels_prefilled_text_opener_and_final_response_marker_are_found(make_model):
    model = make_model(APRIEL, template=APRIEL_TEMPLATE)
    assert found(model) == TagFormat("tags", ("Here are my reasoning steps:",
                                              "[BEGIN FINAL RESPONSE]"))
    answer, _ = ask(model)
    assert (answer["thinking"], answer["output"]) == ("3 apples and 2 apples.", "5 apples.")


def test_a_wrapped_format_is_stored_and_read_back_whole():
    fmt = TagFormat("tags", ("<|open|>think<|sep|>", "<|close|>think<|sep|>"),
                    ("<|open|>response<|sep|>", "<|close|>"))
    assert TagFormat.parse(fmt.value) == fmt
    assert TagFormat.parse("tags:<a>,</a>") == TagFormat("tags", ("<a>", "</a>"))


APRIEL_15 = Script("<|go|>", [Piece("Here are my reasoning steps:"), "\nTen minus three.",
                              Piece("\n[BEGIN FINAL RESPONSE]\n"), "Seven.",
                              Piece("\n[END FINAL RESPONSE]")])


def test_think_and_answer_tags_with_spaces_are_taken_from_the_flags_and_config(make_model):
    """Apriel 1.5 writes its own opener and ends its answer with [END FINAL RESPONSE]."""
    model = make_model(APRIEL_15)
    answer, _ = ask(model, "--think-tags", "Here are my reasoning steps:,[BEGIN FINAL RESPONSE]",
                    "--answer-tags", ",[END FINAL RESPONSE]")
    assert (answer["thinking"], answer["output"]) == ("Ten minus three.", "Seven.")
    config = config_file()
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f'[models."{model.name}"]\n'
                      'think_tags = "Here are my reasoning steps:,[BEGIN FINAL RESPONSE]"\n'
                      'answer_tags = ",[END FINAL RESPONSE]"\n', encoding="utf-8")
    answer, _ = ask(model)
    assert (answer["thinking"], answer["output"]) == ("Ten minus three.", "Seven.")
    done = subprocess.run([sys.executable, "-m", "reflectchat", "ask", "--demo", "--no-save",
                           "--answer-tags", "<a>,</a>", "q"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 1
    assert "--answer-tags goes with --think-tags" in done.stderr.splitlines()[-1]


def test_apriel_15s_answer_markers_are_read_from_what_its_template_asks(make_model):
    """No opener anywhere in the template: all before [BEGIN FINAL RESPONSE] is thinking,
    and [END FINAL RESPONSE] ends the answer; no flag."""
    model = make_model(APRIEL_15_SCRIPTS, template=APRIEL_15_TEMPLATE)
    assert found(model) == TagFormat("tags", ("", "[BEGIN FINAL RESPONSE]"),
                                     ("", "[END FINAL RESPONSE]"))
    answer, stderr = ask(model)
    assert "answer markers its template asks for" in stderr
    assert answer["thinking"] == "Here are my reasoning steps: Ten minus three."
    assert answer["output"] == "Seven."


@pytest.mark.parametrize(("opener", "closer"), [
    ("<|begin_of_thought|>", "<|end_of_thought|>"), ("[REASON]", "[/REASON]"),
    ("<|reasoning>", "<reasoning|>")])
def test_a_thinking_pair_among_the_special_tokens_is_found_by_its_shape(make_model, opener,
                                                                         closer):
    """A family no list names and no template shows: its markers are special tokens of a
    pair's shape around a thinking word."""
    model = make_model([Script("<|go|>", [Control(opener), "Six times seven.", Control(closer),
                                          "It is 42."]),
                        Script("<|begin_of_text|>", ["unused"])])
    assert found(model) == TagFormat("tags", (opener, closer))
    answer, stderr = ask(model)
    assert "from a pair of its special tokens" in stderr
    assert (answer["thinking"], answer["output"]) == ("Six times seven.", "It is 42.")
