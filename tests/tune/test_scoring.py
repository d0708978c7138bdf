"""Span losses from llama.cpp's logits, checked against an independent numpy computation over
the same model's full logits (llama-cpp-python's `logits_all` scores), on the real Gemma 3 270M
and on a scripted GGUF; and IFD / r-IFD from them."""

from __future__ import annotations

import math

import llama_cpp
import numpy as np
import pytest

from reflectchat.demo.scripted_model import Script
from reflectchat.engine.cpu import repack_default
from reflectchat.engine.llama import EngineSettings, LlamaEngine
from reflectchat.engine.llama_cpp_api import model_params
from reflectchat.engine.scoring import Scorer, TooLong
from reflectchat.tune.ifd import REVERSE_PROMPT, score_pair


def numpy_loss(path, n_batch: int, prefix: list[int], target: list[int]) -> float:
    """Mean -log p of `target` after `prefix`, from every position's logits, in float64."""
    tokens = prefix + target
    with model_params(repack=repack_default()):  # the engine's load parameters
        # a context just big enough: logits_all keeps n_ctx x vocabulary floats (Gemma: 1 MiB
        # per position)
        llm = llama_cpp.Llama(str(path), n_ctx=256, n_batch=n_batch, logits_all=True,
                              verbose=False)
    assert len(tokens) <= 256
    llm.eval(tokens)
    scores = np.asarray(llm.scores[:len(tokens)], dtype=np.float64)
    llm.close()
    first = max(len(prefix), 1)
    total = 0.0
    for position in range(first, len(tokens)):
        row = scores[position - 1]
        top = row.max()
        total += top + math.log(np.exp(row - top).sum()) - row[tokens[position]]
    return total / (len(tokens) - first)


@pytest.mark.parametrize("n_batch", [512, 8])  # 8: the spans cross llama.cpp batches
def test_span_loss_matches_numpy_on_the_real_gemma(real_model, n_batch):
    engine = LlamaEngine(real_model, EngineSettings(n_ctx=2048, n_batch=n_batch))
    scorer = Scorer(engine)
    prefix = scorer.chat_prefix("What is the capital of France?")
    target = scorer.text_tokens("The capital of France is Paris, on the Seine.")
    start = scorer.start()
    given = scorer.span_loss(prefix, target)
    alone = scorer.span_loss(start, target)
    engine.close()  # (the scorer's tokenizer goes with it)
    assert given.tokens == len(target) and alone.tokens == len(target)
    assert given.loss == pytest.approx(numpy_loss(real_model, n_batch, prefix, target),
                                       rel=1e-4)
    assert alone.loss == pytest.approx(numpy_loss(real_model, n_batch, start, target),
                                       rel=1e-4)
    assert given.loss < alone.loss  # the question helps: the answer is less surprising


def test_span_loss_matches_numpy_on_a_scripted_model(make_model):
    path = make_model(Script("<|go|>", ["The answer is forty-two."]))
    engine = LlamaEngine(path, EngineSettings(n_ctx=512))
    scorer = Scorer(engine)
    prefix = scorer.chat_prefix("go")
    target = scorer.text_tokens("The answer is forty-two.")
    scored = scorer.span_loss(prefix, target)
    without_start = scorer.span_loss([], target)  # the first token has nothing before it
    engine.close()
    assert scored.loss == pytest.approx(numpy_loss(path, 512, prefix, target), rel=1e-4)
    assert without_start.tokens == len(target) - 1
    assert without_start.loss == pytest.approx(numpy_loss(path, 512, [], target), rel=1e-4)


def test_ifd_and_rifd_follow_their_definitions(real_model):
    engine = LlamaEngine(real_model, EngineSettings(n_ctx=2048))
    scorer = Scorer(engine)
    question, answer = "Name the largest planet.", "Jupiter is the largest planet."
    scores = score_pair(scorer, question, answer)
    q, a = scorer.text_tokens(question), scorer.text_tokens(answer)
    given = scorer.span_loss(scorer.chat_prefix(question), a)
    alone = scorer.span_loss(scorer.start(), a)
    reverse = scorer.span_loss(scorer.chat_prefix(REVERSE_PROMPT.format(answer=answer)), q)
    q_alone = scorer.span_loss(scorer.start(), q)
    engine.close()
    assert scores.ifd == pytest.approx(given.perplexity / alone.perplexity)
    assert scores.rifd == pytest.approx(reverse.perplexity / q_alone.perplexity)
    assert scores.tokens == 2 * len(a) + 2 * len(q)
    assert 0 < scores.ifd < 1  # the question makes its answer likelier


def test_a_span_longer_than_the_context_is_refused_not_cut(make_model):
    engine = LlamaEngine(make_model(Script("<|go|>", ["ok"])), EngineSettings(n_ctx=64))
    scorer = Scorer(engine)
    with pytest.raises(TooLong, match=f"do not fit the {engine.n_ctx:,}-token context"):
        scorer.span_loss(scorer.start(), scorer.text_tokens("word " * 200))
    engine.close()


def test_chat_still_answers_after_scoring(make_model):
    """Scoring clears the model's cache: the next answer evaluates its prompt afresh."""
    from reflectchat.engine.base import ChatMessage, Sampling

    engine = LlamaEngine(make_model(Script("<|go|>", ["Forty-two."])),
                         EngineSettings(n_ctx=512))
    first = "".join(engine.generate([ChatMessage("user", "q")], Sampling(temperature=0)))
    scorer = Scorer(engine)
    scorer.span_loss(scorer.chat_prefix("zzz"), scorer.text_tokens("other text"))
    again = "".join(engine.generate([ChatMessage("user", "q")], Sampling(temperature=0)))
    engine.close()
    assert first == again == "Forty-two."
