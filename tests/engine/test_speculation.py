"""Speculative decoding through the real llama.cpp: a draft model and n-grams propose, the model
keeps its own tokens, and every stop acts at the exact token, as without speculation."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from itertools import islice
from pathlib import Path

import numpy as np
import pytest

from reflectchat.cli.args import engine_settings, runtime_of, with_runtime
from reflectchat.cli.parser import build_parser
from reflectchat.demo.scripted_model import Control, Cost, Piece, Script
from reflectchat.engine.base import ChatMessage, FinishReason, GenerationStats, Sampling
from reflectchat.engine.drafting import ModelDraft, NgramDraft
from reflectchat.engine.errors import EngineError
from reflectchat.engine.llama import EngineSettings, LlamaEngine
from reflectchat.engine.llama_cpp_model import LoadedModel
from reflectchat.engine.token_loop import Tally, sampled_tokens
from reflectchat.models.choice import choose_model
from reflectchat.paths import config_file

WORDS = [Piece(f" w{i}") for i in range(150)]  # a token each, none repeated
STORY = Script("<|go|>", ["Thinking it over:", *WORDS])
# the answer restates its thinking: n-grams from the context can draft the second half (a
# control token ends each run: only it may have another successor the second time)
RESTATED = Script("<|go|>", [Control("<think>"), *WORDS[:60], Control("<|sep|>"),
                             Piece(" so"), Control("</think>"), Piece(" So:"), *WORDS[:60],
                             Control("<|sep|>"), Piece(" Done.")])
USER = [ChatMessage("user", "Question?")]
QWEN3_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n<|go|>{% endif %}")


GREEDY = Sampling(temperature=0)


def answer(path: Path, settings: EngineSettings, sampling: Sampling = GREEDY,
           budget: int | None = None) -> tuple[str, GenerationStats]:
    engine = LlamaEngine(path, settings)
    try:
        generation = engine.generate(USER, replace(sampling, thinking_budget=budget))
        return "".join(generation), generation.stats
    finally:
        engine.close()


@pytest.fixture
def pair(make_model) -> tuple[Path, Path]:
    """A target and a draft of the same tokens that strays from the script on 30% of them."""
    target = make_model(STORY, "target.gguf", cost=Cost(layers=2))
    draft = make_model(STORY, "draft.gguf", cost=Cost(astray=0.3, seed=1))
    return target, draft


def test_a_draft_model_proposes_and_the_answer_is_the_models_own(pair):
    target, draft = pair
    plain, plain_stats = answer(target, EngineSettings(n_ctx=512))
    text, stats = answer(target, EngineSettings(n_ctx=512, speculation="draft",
                                                draft_model=draft))
    assert text == plain == STORY.text
    assert stats.completion_tokens == plain_stats.completion_tokens
    assert stats.finish_reason is FinishReason.STOP
    assert stats.speculation == "draft"
    assert stats.drafted and 0 < stats.accepted < stats.drafted  # the draft strays, and is cut
    assert 0.1 < stats.acceptance < 0.95


def test_a_draft_that_keeps_to_the_script_is_accepted_whole(make_model):
    target = make_model(STORY, "target.gguf")
    draft = make_model(STORY, "draft.gguf")
    text, stats = answer(target, EngineSettings(n_ctx=512, speculation="draft",
                                                draft_model=draft, draft_max=4))
    assert text == STORY.text
    assert stats.accepted == stats.drafted > 100


def test_ngrams_draft_what_the_answer_restates(make_model):
    model = make_model(RESTATED, template=QWEN3_TEMPLATE)
    plain, _ = answer(model, EngineSettings(n_ctx=512))
    text, stats = answer(model, EngineSettings(n_ctx=512, speculation="ngram"))
    assert text == plain == RESTATED.text
    assert stats.speculation == "ngram"
    assert stats.accepted >= 50  # the restated half came from the thinking


@pytest.mark.parametrize("limit", [1, 7, 64, 149])
def test_the_answer_limit_acts_at_the_exact_token(pair, limit):
    target, draft = pair
    sampling = Sampling(temperature=0, max_tokens=limit)
    plain, _ = answer(target, EngineSettings(n_ctx=512), sampling)
    for settings in (EngineSettings(n_ctx=512, speculation="draft", draft_model=draft),
                     EngineSettings(n_ctx=512, speculation="ngram")):
        text, stats = answer(target, settings, sampling)
        assert (text, stats.completion_tokens) == (plain, limit)
        assert stats.finish_reason is FinishReason.LENGTH


def test_the_context_limit_acts_at_the_exact_token(pair):
    target, draft = pair
    plain, plain_stats = answer(target, EngineSettings(n_ctx=96))
    text, stats = answer(target, EngineSettings(n_ctx=96, speculation="draft",
                                                draft_model=draft))
    assert (text, stats.completion_tokens) == (plain, plain_stats.completion_tokens)
    assert stats.finish_reason is FinishReason.LENGTH
    assert stats.prompt_tokens + stats.completion_tokens == 96


def test_the_end_of_turn_inside_an_accepted_run_ends_the_answer(make_model):
    """A draft that agrees wholly proposes the end-of-generation token among the others."""
    script = Script("<|go|>", ["A short answer:", *WORDS[:20]])
    target = make_model(script, "target.gguf")
    draft = make_model(script, "draft.gguf")
    text, stats = answer(target, EngineSettings(n_ctx=512, speculation="draft",
                                                draft_model=draft))
    assert text == script.text
    assert stats.finish_reason is FinishReason.STOP
    assert stats.accepted == stats.drafted > 0


def test_a_thinking_budget_cuts_at_the_same_token_with_speculation(make_model):
    model = make_model(RESTATED, template=QWEN3_TEMPLATE)
    draft = make_model(RESTATED, "draft.gguf", template=QWEN3_TEMPLATE)
    plain, plain_stats = answer(model, EngineSettings(n_ctx=512), budget=20)
    for settings in (EngineSettings(n_ctx=512, speculation="ngram"),
                     EngineSettings(n_ctx=512, speculation="draft", draft_model=draft)):
        text, stats = answer(model, settings, budget=20)
        assert text == plain
        assert stats.completion_tokens == plain_stats.completion_tokens
    assert " w19</think> So:" in plain


def test_loop_stopping_stops_at_the_same_token(make_model):
    looping = Script("<|go|>", ["Again and", *WORDS[:12], Piece(" once more")], loops=True)
    model = make_model(looping)
    sampling = Sampling(temperature=0)
    plain, plain_stats = answer(model, EngineSettings(n_ctx=1024), sampling)
    text, stats = answer(model, EngineSettings(n_ctx=1024, speculation="ngram"), sampling)
    assert plain_stats.finish_reason is FinishReason.LOOP
    assert (text, stats.completion_tokens, stats.finish_reason) == \
        (plain, plain_stats.completion_tokens, FinishReason.LOOP)
    assert stats.accepted  # the loop's second round was drafted from its first


def test_ngrams_that_keep_missing_wait_instead_of_costing_every_step(make_model):
    """Every 3-gram comes back with another continuation: each proposal is wrong, so the
    drafter waits longer and longer and checks its guesses for free meanwhile."""
    segments = []
    for i in range(100):
        segments += [Control("<|a|>"), Control("<|b|>"), Control("<|c|>"), Piece(f" f{i}")]
    model = make_model(Script("<|go|>", ["Go:", *segments]))
    plain, _ = answer(model, EngineSettings(n_ctx=1024))
    text, stats = answer(model, EngineSettings(n_ctx=1024, speculation="ngram"))
    assert text == plain
    assert stats.accepted == 0 and 0 < stats.drafted <= 20  # of 400 tokens


def test_a_draft_of_another_vocabulary_is_refused_in_one_sentence(make_model):
    target = make_model(STORY, "target.gguf")
    other = make_model(Script("<|go|>", ["Something else entirely."]), "other.gguf")
    with pytest.raises(EngineError) as caught:
        LlamaEngine(target, EngineSettings(n_ctx=512, speculation="draft", draft_model=other))
    said = str(caught.value)
    assert said.startswith("other.gguf cannot draft for target.gguf: ")
    assert "vocabular" in said and "\n" not in said


def test_a_draft_file_that_is_not_a_model_is_refused(make_model, tmp_path):
    target = make_model(STORY, "target.gguf")
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\x00" * 64)
    with pytest.raises(EngineError, match=r"^broken\.gguf cannot draft for target\.gguf: "):
        LlamaEngine(target, EngineSettings(n_ctx=512, speculation="draft", draft_model=broken))


def test_a_seed_reproduces_a_sampled_answer_with_speculation(real_model):
    settings = EngineSettings(n_ctx=1024, speculation="ngram")
    sampling = Sampling(temperature=0.8, seed=11, max_tokens=60, stop_loops=False)
    first = answer(real_model, settings, sampling)
    second = answer(real_model, settings, sampling)
    assert first[1].drafted > 0  # the n-grams drafted (45 of the 60 tokens here)
    assert first[0] == second[0] and first[1].drafted == second[1].drafted


NOISE = 2.0  # logits: llama.cpp's batched CPU kernels round apart by up to ~1.6 (measured)


def test_greedy_gemma_with_ngrams_and_a_draft_keeps_its_own_tokens(real_model):
    """The real Gemma: every token of a speculative greedy answer is the model's top token as
    plain one-token decoding computes it after the same tokens, or within rounding of it
    (llama.cpp's batched and one-token kernels round apart, so at a near tie either is the
    model's greedy choice)."""
    model = LoadedModel.load(str(real_model), n_ctx=1024)
    draft = LoadedModel.load(str(real_model), n_ctx=1024)
    checker = draft  # once an answer is whole, the draft's context checks it from the start
    try:
        prompt = [model.vocab.bos, *model.vocab.tokenize(
            "<start_of_turn>user\nRepeat after me: the quick brown fox jumps over the lazy "
            "dog.<end_of_turn>\n<start_of_turn>model\n", special=True)]
        greedy = Sampling(temperature=0)
        for drafter in (NgramDraft(), ModelDraft(draft, most=4, p_min=0)):
            stats = GenerationStats()
            spoken = list(islice(sampled_tokens(model, prompt, greedy, None, drafter,
                                                Tally(stats, drafter.kind)), 64))
            assert stats.accepted and stats.accepted > 32  # of 64: n-grams 57, the draft 48
            checker.clear_cache()
            checker.evaluate(checker.to_evaluate(prompt))
            exact = 0
            for token in spoken:
                logits = checker.last_logits()
                best = int(np.argmax(logits))
                assert token == best or logits[best] - logits[token] < NOISE
                exact += token == best
                checker.evaluate([token])
            assert exact >= len(spoken) - 6
    finally:
        for loaded in (model, draft):
            loaded.close()


def settings_for(model: Path, *flags: str) -> EngineSettings:
    args = build_parser().parse_args(["ask", "--model", str(model), *flags, "q"])
    return engine_settings(args, choose_model(str(model), None, False))


def test_n_grams_are_on_by_default_and_the_flags_and_config_toml_choose(pair, make_model):
    target, draft = pair
    assert settings_for(target).speculation == "ngram"
    assert settings_for(target, "--spec", "off").speculation == "off"
    chosen = settings_for(target, "--draft-model", str(draft), "--draft-max", "3")
    assert (chosen.speculation, chosen.draft_model, chosen.draft_max) == ("draft", draft, 3)
    assert chosen.draft_gpu_layers == 0  # no GPU here
    path = config_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'[models."{target.name}"]\ndraft_model = "{draft}"\ndraft_p_min = 0.8\n',
                    encoding="utf-8")
    chosen = settings_for(target)
    assert (chosen.speculation, chosen.draft_model, chosen.draft_p_min) == ("draft", draft, 0.8)
    assert settings_for(target, "--spec", "off").speculation == "off"  # the flag wins
    path.write_text(f'[models."{target.name}"]\nspec = "sometimes"\n', encoding="utf-8")
    with pytest.raises(EngineError, match="spec must be one of off, ngram, draft"):
        settings_for(target)
    with pytest.raises(EngineError, match="needs one: --draft-model"):
        settings_for(target, "--spec", "draft")


def test_the_demo_never_speculates():
    args = build_parser().parse_args(["ask", "q"])
    assert engine_settings(args, choose_model(None, None, True)).speculation == "off"


def test_the_apps_runtime_settings_choose_the_drafting():
    args = build_parser().parse_args(["--spec", "off"])
    runtime = runtime_of(args)
    assert runtime.speculation == "off"
    for asked, spec, draft in [("ngram", "ngram", None), ("off", "off", None),
                               ("qwen3-0.6b", "draft", "qwen3-0.6b")]:
        chosen = with_runtime(args, replace(runtime, speculation=asked))
        assert (chosen.spec, chosen.draft_model) == (spec, draft)
    assert with_runtime(args, replace(runtime, speculation=None)).spec == "off"  # as started


def test_ask_json_and_sessions_show_record_the_drafting(make_model, tmp_path):
    model = make_model(RESTATED, template=QWEN3_TEMPLATE)
    done = subprocess.run([sys.executable, "-m", "reflectchat", "ask", "--model", str(model),
                           "--temperature", "0", "--json", "Question?"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    said = json.loads(done.stdout)
    stats = said["stats"]
    assert stats["speculation"] == "ngram" and stats["accepted"] >= 50
    assert stats["drafted"] >= stats["accepted"]
    shown = subprocess.run([sys.executable, "-m", "reflectchat", "sessions", "show",
                            str(said["session"])], capture_output=True, text=True, timeout=60)
    assert f"spec {stats['accepted'] / stats['drafted']:.0%}" in shown.stdout
    assert f"({stats['accepted']:,}/{stats['drafted']:,} drafted)" in shown.stdout


def test_doctor_says_which_draft_pairs_are_unusable_and_why(pair, make_model):
    target, draft = pair
    other = make_model(Script("<|go|>", ["Something else entirely."]), "other.gguf")
    path = config_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'[models."{target}"]\ndraft_model = "{other}"\n', encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "reflectchat", "doctor", "--json", "--model",
                           str(target), "--draft-model", str(draft)],
                          capture_output=True, text=True, timeout=120)
    pairs = json.loads(done.stdout)["drafts"]
    assert pairs[0] == {"model": str(target), "draft": str(draft), "problem": None}
    assert pairs[1]["draft"] == str(other) and "vocabular" in pairs[1]["problem"]
    shown = subprocess.run([sys.executable, "-m", "reflectchat", "doctor"],
                           capture_output=True, text=True, timeout=120)
    assert "Draft model other.gguf for target.gguf: unusable: the vocabularies differ" in \
        shown.stdout
    assert "llama_context" not in shown.stderr  # llama.cpp's own messages stay out
