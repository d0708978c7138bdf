"""A mixture of experts decoding on the CPU, where its experts in RAM are computed when a GPU
holds the rest: llama.cpp's repacked CPU weights (`--repack on`) against none (`off`), in the
same run, interleaved. Reflectchat loads repacked weights by default except on CPUs with AMX
(engine/cpu.py); this says what that is worth for a mixture on this machine.

    python bench/moe_cpu.py [--rounds 3] [--tokens 128]

The model is a generated `qwen3moe` GGUF (tests/support/moe_model.py) with Q4_0 matrices, a type
this CPU repacks: 16 layers, 64 experts of 512, 8 in use, about 0.9 GB.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support.moe_model import MoeShape, write_moe_gguf

from reflectchat.engine.base import ChatMessage, Sampling
from reflectchat.engine.cpu import repacked_types
from reflectchat.engine.llama import EngineSettings, LlamaEngine

SHAPE = MoeShape(layers=16, embd=1024, heads=16, kv_heads=4, head_dim=64, experts=64,
                 experts_used=8, expert_ff=512, context=2048)


def decode(path: Path, repack: bool, tokens: int) -> float:
    engine = LlamaEngine(path, EngineSettings(n_ctx=1024, template="chatml", repack=repack))
    generation = engine.generate([ChatMessage("user", "Count.")],
                                 Sampling(temperature=0, max_tokens=tokens, stop_loops=False))
    for _ in generation:
        pass
    engine.close()
    return generation.stats.tokens_per_second or 0.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=128)
    args = parser.parse_args()
    print(f"repacked types on this CPU: {sorted(repacked_types()) or 'none'}")
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        path = write_moe_gguf(Path(tmp) / "moe-q4_0.gguf", SHAPE, quant="q4_0")
        print(f"model: {path.stat().st_size / 1e9:.2f} GB, written in "
              f"{time.perf_counter() - start:.0f} s")
        speeds: dict[bool, list[float]] = {False: [], True: []}
        for round_ in range(args.rounds):
            for repack in (False, True) if round_ % 2 == 0 else (True, False):
                speeds[repack].append(decode(path, repack, args.tokens))
        off, on = (statistics.median(speeds[r]) for r in (False, True))
        print(f"decode, {args.tokens} tokens, median of {args.rounds}: repack off {off:.1f} "
              f"tok/s, on {on:.1f} tok/s; on / off {on / off:.3f}")


if __name__ == "__main__":
    main()
