"""Every reasoning family, run as a user runs it: `ask --json` on generated GGUFs whose markers
are special tokens (CONTROL, as the real files type them) and whose chat templates write
reasoning as the family's real templates do, so that the format is found from the file.

Where a family's generation prompt ends in a role header rather than a marker, the template
ends with the script's trigger token after that header (gpt-oss: tests/support/harmony_model.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.harmony_model import HARMONY, HARMONY_LOW, HARMONY_REST, HARMONY_TEMPLATE

from reflectchat.demo.scripted_model import Control, Piece, Script
from reflectchat.engine.base import TagFormat
from reflectchat.engine.llama import EngineSettings, LlamaEngine

# Qwen3: reasoning_content in <think>; enable_thinking=false writes an empty think block
QWEN3_TEMPLATE = (
    "{% for m in messages %}{% if m.role == 'assistant' %}<|im_start|>assistant\n"
    "{% if m.reasoning_content is defined %}<think>\n{{ m.reasoning_content }}\n</think>\n\n"
    "{% endif %}{{ m.content }}<|im_end|>\n{% else %}<|im_start|>{{ m.role }}\n{{ m.content }}"
    "<|im_end|>\n{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and enable_thinking is false %}<think>\n\n</think>\n\n"
    "<|go_plain|>{% else %}<|go|>{% endif %}{% endif %}"
)
QWEN3 = [Script("<|go|>", [Control("<think>"), "Adding: 2 and 2 make 4.", Control("</think>"),
                           "\n\nThe sum is 4."]),
         Script("<|go_plain|>", ["Four, without thinking."])]

# EXAONE Deep: its generation prompt opens <thought> itself, so the answer only closes it
EXAONE_TEMPLATE = (  # earlier answers go back without their thought, as its template does
    "{% for m in messages %}[|{{ m.role }}|]{{ m.content.split('</thought>')[-1] }}"
    "[|endofturn|]\n{% endfor %}"
    "{% if add_generation_prompt %}[|assistant|]<thought>{% endif %}"
)
EXAONE = Script("<thought>", ["\nCounting the letters: three.", Control("</thought>"),
                              "\nThere are three."])
# the shape of EXAONE Deep's own template (its model card): an empty system turn first, and the
# prompt ends in <thought> and a newline; that newline is the scripted model's trigger here
EXAONE_NEWLINE_TEMPLATE = (
    "{% for m in messages %}{% if loop.first and m.role != 'system' %}"
    "[|system|][|endofturn|]\n{% endif %}[|{{ m.role }}|]{{ m.content.split('</thought>')[-1] }}"
    "{% if m.role != 'user' %}[|endofturn|]{% endif %}{% if not loop.last %}\n{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}\n[|assistant|]<thought>\n{% endif %}"
)
EXAONE_NEWLINE = [Script("\n", ["Counting the letters: three.", Control("</thought>"),
                                 Piece(" "), "There are three."]),
                  Script("<thought>", ["unused"])]

MAGISTRAL_TEMPLATE = (
    "{% for m in messages %}{% if m.role == 'user' %}[INST]{{ m.content }}[/INST]"
    "{% elif m.role == 'assistant' %}{% if m.reasoning_content is defined %}[THINK]"
    "{{ m.reasoning_content }}[/THINK]{% endif %}{{ m.content }}</s>{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|go|>{% endif %}"
)
MAGISTRAL = Script("<|go|>", [Control("[THINK]"), "Three sides: a triangle.",
                              Control("[/THINK]"), "A triangle."])

SEED_TEMPLATE = (
    "{% for m in messages %}<seed:bos>{{ m.role }}\n{% if m.reasoning_content is defined %}"
    "<seed:think>{{ m.reasoning_content }}</seed:think>{% endif %}{{ m.content }}<seed:eos>"
    "{% endfor %}{% if add_generation_prompt %}<seed:bos>assistant\n<|go|>{% endif %}"
)
SEED = Script("<|go|>", [
    Control("<seed:think>"), "First, 6 times 7.", Control("<seed:cot_budget_reflect>"),
    "I have used 12 tokens, and there are 500 tokens remaining for use.",
    Control("</seed:cot_budget_reflect>"), " It is 42.", Control("</seed:think>"),
    "6 × 7 = 42.",
])

# Granite 3.2: `thinking=true` asks for plain-text headings instead of tags
GRANITE_TEMPLATE = (
    "{% if thinking %}<|start_of_role|>system<|end_of_role|>Respond after thinking. Write "
    "'Here is my thought process:' and then 'Here is my response:'.<|end_of_text|>\n"
    "{% endif %}{% for m in messages %}<|start_of_role|>{{ m.role }}<|end_of_role|>"
    "{{ m.content }}<|end_of_text|>\n{% endfor %}{% if add_generation_prompt %}"
    "<|start_of_role|>assistant<|end_of_role|>{% if thinking %}<|go|>{% else %}<|go_plain|>"
    "{% endif %}{% endif %}"
)
GRANITE = [Script("<|go|>", ["Here is my thought process:\nTwo halves make one whole.\n",
                             "Here is my response:\nOne."]),
           Script("<|go_plain|>", ["Just one."])]


def ask(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reflectchat", "ask", "--no-save", "--json",
                           *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "200"})


def answer_of(model: Path, *args: str) -> tuple[dict, str]:
    result = ask("--model", str(model), *args, "q")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout), result.stderr


def test_gpt_oss_analysis_is_thinking_and_its_markup_never_shows(make_model):
    model = make_model([HARMONY, HARMONY_LOW, *HARMONY_REST], template=HARMONY_TEMPLATE)
    answer, stderr = answer_of(model)
    assert "reasoning: harmony, from the template" in stderr
    assert answer["thinking"] == "The user asks for 2+2. That is 4."
    assert answer["output"] == "2 + 2 = 4."
    assert answer["finish_reason"] == "stop"
    assert "<|" not in answer["thinking"] + answer["output"]
    assert answer["raw"].startswith("<|channel|>analysis<|message|>")  # rendered, not dropped


def test_gpt_oss_effort_reaches_its_template(make_model):
    model = make_model([HARMONY, HARMONY_LOW, *HARMONY_REST], template=HARMONY_TEMPLATE)
    answer, _ = answer_of(model, "--effort", "low")
    assert answer["output"] == "Briefly: 4." and answer["stats"]["effort"] == "low"
    assert answer["stats"]["reasoning_note"] is None


def test_gpt_oss_effort_off_ends_its_analysis_at_once(make_model):
    """gpt-oss has no "off" in its template: the engine closes the analysis itself."""
    model = make_model([HARMONY, HARMONY_LOW, *HARMONY_REST], template=HARMONY_TEMPLATE)
    answer, _ = answer_of(model, "--effort", "off")
    assert answer["thinking"] == "" and answer["stats"]["thinking_budget"] == 0
    assert answer["output"]  # the model went on in its answer channel


def test_qwen3_thinks_and_effort_off_turns_its_thinking_off(make_model):
    model = make_model(QWEN3, template=QWEN3_TEMPLATE)
    answer, stderr = answer_of(model)
    assert "reasoning: think, from the template" in stderr
    assert (answer["thinking"], answer["output"]) == ("Adding: 2 and 2 make 4.", "The sum is 4.")
    answer, _ = answer_of(model, "--effort", "off")
    assert (answer["thinking"], answer["output"]) == ("", "Four, without thinking.")
    answer, _ = answer_of(model, "--effort", "high")
    assert "only turns thinking on or off" in answer["stats"]["reasoning_note"]


@pytest.mark.parametrize(("scripts", "template"), [
    (EXAONE, EXAONE_TEMPLATE), (EXAONE_NEWLINE, EXAONE_NEWLINE_TEMPLATE)])
def test_exaone_deeps_template_opens_thought_and_the_answer_only_closes_it(make_model, scripts,
                                                                            template):
    model = make_model(scripts, template=template)
    answer, stderr = answer_of(model)
    assert "reasoning: thought, from the template" in stderr
    assert (answer["thinking"], answer["output"]) == ("Counting the letters: three.",
                                                      "There are three.")
    assert "</thought>" not in answer["output"]


@pytest.mark.parametrize(("scripts", "template", "family", "thinking", "output"), [
    (MAGISTRAL, MAGISTRAL_TEMPLATE, "magistral", "Three sides: a triangle.", "A triangle."),
    (SEED, SEED_TEMPLATE, "seed", None, "6 × 7 = 42."),
])
def test_bracket_and_seed_thinking_are_found_from_the_template(make_model, scripts, template,
                                                               family, thinking, output):
    answer, stderr = answer_of(make_model(scripts, template=template))
    assert f"reasoning: {family}, from the template" in stderr
    assert answer["output"] == output
    if thinking is not None:
        assert answer["thinking"] == thinking
    else:  # Seed-OSS's budget note stays inside its thinking
        assert answer["thinking"].startswith("First, 6 times 7.")
        assert "500 tokens remaining" in answer["thinking"]


def test_granites_plain_headings_are_read_when_its_thinking_is_on(make_model):
    model = make_model(GRANITE, template=GRANITE_TEMPLATE)
    answer, stderr = answer_of(model, "--effort", "high")
    assert "reasoning: granite, from the template" in stderr
    assert (answer["thinking"], answer["output"]) == ("Two halves make one whole.", "One.")
    answer, _ = answer_of(model)  # Granite thinks only when asked to
    assert (answer["thinking"], answer["output"]) == ("", "Just one.")


def test_a_family_not_known_yet_is_read_by_the_tags_its_template_writes(make_model):
    template = (
        "{% for m in messages %}<|turn|>{{ m.role }}\n{% if m.reasoning_content is defined %}"
        "<reason>{{ m.reasoning_content }}</reason>{% endif %}{{ m.content }}<|end_turn|>\n"
        "{% endfor %}{% if add_generation_prompt %}<|go|>{% endif %}")
    script = Script("<|go|>", [Control("<reason>"), "Why not.", Control("</reason>"), "Yes."])
    answer, stderr = answer_of(make_model(script, template=template))
    assert "reasoning: tags:<reason>,</reason>, from the template" in stderr
    assert (answer["thinking"], answer["output"]) == ("Why not.", "Yes.")


def test_think_tags_on_the_command_line_read_any_family(make_model):
    """`ponder` names no thinking the engine could find, so only the flag says it is one."""
    script = Script("<|go|>", [Control("<|ponder|>"), "Why not.", Control("<|/ponder|>"),
                               "Yes."])
    model = make_model(script)
    answer, stderr = answer_of(model)
    assert answer["output"].startswith("<|ponder|>")  # shown literally: nothing says otherwise
    answer, stderr = answer_of(model, "--think-tags", "<|ponder|>,<|/ponder|>")
    assert "reasoning: tags:<|ponder|>,<|/ponder|>, --think-tags" in stderr
    assert (answer["thinking"], answer["output"]) == ("Why not.", "Yes.")


def test_the_same_tag_to_open_and_close_thinking_is_refused(make_model):
    done = subprocess.run([sys.executable, "-m", "reflectchat", "ask", "--demo", "--no-save",
                           "--think-tags", "<t>,<t>", "q"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "think tags must differ: '<t>' cannot both open and close the thinking" \
        in done.stderr.splitlines()[-1]


def test_a_file_without_a_template_is_read_by_its_special_tokens(make_model):
    model = make_model(MAGISTRAL, template="")
    engine = LlamaEngine(model, EngineSettings(n_ctx=256))
    try:
        assert engine.found_format.tag_format == TagFormat("magistral")
        assert engine.found_format.why == "from its special tokens"
    finally:
        engine.close()


# switches named as no list knew them: GigaChat 3.5's `reasoning`, and a Kimi-K3-style
# `thinking` (on unless set) beside a `thinking_effort` level
NAMED_SWITCHES_TEMPLATE = (
    "{% if thinking is undefined %}{% set thinking = true %}{% endif %}"
    "{% for m in messages %}<|role|>{{ m.role }}\n{{ m.content }}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}{% if thinking and thinking_effort is defined %}"
    "effort: {{ thinking_effort }}\n{% endif %}"
    "{% if reasoning is defined and not reasoning or not thinking %}<|go_plain|>"
    "{% else %}<|go|>{% endif %}{% endif %}"
)


def test_effort_switches_are_found_by_what_they_change_not_by_name(make_model):
    model = make_model(QWEN3, template=NAMED_SWITCHES_TEMPLATE)
    engine = LlamaEngine(model, EngineSettings(n_ctx=512))
    try:
        levels, switches = engine.prompt.switches()
        assert (levels, sorted(switches)) == (["thinking_effort"], ["reasoning", "thinking"])
        variables, note = engine.prompt.effort("high")
        assert variables == {"reasoning": True, "thinking": True, "thinking_effort": "high"}
        assert note is None
    finally:
        engine.close()
    answer, _ = answer_of(model, "--effort", "off")
    assert (answer["thinking"], answer["output"]) == ("", "Four, without thinking.")
    answer, _ = answer_of(model, "--effort", "low")
    assert answer["thinking"] == "Adding: 2 and 2 make 4."


def test_a_thinking_budget_ends_thinking_and_the_answer_still_follows(make_model):
    long_thinking = [Piece(f"step {i}; ") for i in range(120)]  # a token each
    script = Script("<|go|>", [Control("<think>"), *long_thinking, Control("</think>"),
                               "The answer after thinking."])
    model = make_model(script, template=QWEN3_TEMPLATE)
    answer, _ = answer_of(model, "--thinking-budget", "20")
    assert answer["output"] == "The answer after thinking."
    assert answer["stats"]["thinking_budget"] == 20
    assert answer["stats"]["channels"]["thinking"]["tokens"] in (20, 21)  # with the closer
    assert answer["thinking"].startswith("step 0;") and answer["thinking"].endswith("step 19;")


def test_a_budget_under_auto_ends_the_thinking_of_the_family_that_opened_it(make_model):
    """[THINK] under --format auto: the watch followed <think> only, and never cut it."""
    long_thinking = [Piece(f"step {i}; ") for i in range(120)]
    script = Script("<|go|>", [Control("[THINK]"), *long_thinking, Control("[/THINK]"),
                               "The answer after thinking."])
    model = make_model(script, template=MAGISTRAL_TEMPLATE)
    answer, _ = answer_of(model, "--format", "auto", "--thinking-budget", "20")
    assert answer["output"] == "The answer after thinking."
    assert answer["thinking"].startswith("step 0;") and answer["thinking"].endswith("step 19;")
    assert answer["raw"].count("[/THINK]") == 1  # the engine's, and the model went on after it


def test_a_budget_for_a_model_that_marks_no_thinking_says_it_cannot_apply(make_model):
    model = make_model(Script("<|go|>", ["Just the answer."]), template=MAGISTRAL_TEMPLATE)
    answer, _ = answer_of(model, "--format", "plain", "--thinking-budget", "5")
    assert answer["output"] == "Just the answer."
    assert answer["stats"]["reasoning_note"] == \
        "this model marks no thinking, so a thinking budget cannot apply"


def test_the_effort_and_budget_an_answer_ran_with_are_kept_with_it(make_model):
    model = make_model(QWEN3, template=QWEN3_TEMPLATE)
    saved = subprocess.run([sys.executable, "-m", "reflectchat", "ask", "--model", str(model),
                            "--effort", "medium", "--thinking-budget", "300", "--json", "q"],
                           capture_output=True, text=True, timeout=120)
    assert saved.returncode == 0, saved.stderr
    session = json.loads(saved.stdout)["session"]
    shown = subprocess.run([sys.executable, "-m", "reflectchat", "sessions", "show",
                            str(session)], capture_output=True, text=True, timeout=120,
                           env={**os.environ, "COLUMNS": "200"})
    assert "reasoning effort medium · thinking budget 300" in shown.stdout
    exported = subprocess.run([sys.executable, "-m", "reflectchat", "sessions", "export",
                               str(session), "--format", "json"], capture_output=True,
                              text=True, timeout=120)
    stats = json.loads(exported.stdout)["messages"][-1]["stats"]
    assert (stats["effort"], stats["thinking_budget"]) == ("medium", 300)
