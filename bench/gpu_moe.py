"""A mixture of experts on a real GPU: its experts in RAM (`--n-cpu-moe`, the placement the
plan chooses) against whole layers offloaded, at about the same GPU memory; tokens/s of each and
what NVML measures the process adding, against the plan's GPU estimate.

Needs llama-cpp-python built with CUDA (on the device machine, from a repacked sdist, as
bench/gpu_fit.py says):

    python bench/gpu_moe.py [--layers 24] [--embd 1024] [--experts 32] [--tokens 64]

The model is a generated `qwen3moe` GGUF of zeros (tests/support/moe_model.py), its experts
about nine tenths of its bytes, as in the real ones. Without an NVIDIA GPU it prints the plans
only. Figures go into docs/benchmarks.md with the card they came from.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from gpu_fit import nvml_used
from support.moe_model import MoeShape, write_moe_gguf

from reflectchat.engine.base import ChatMessage, Sampling
from reflectchat.engine.llama import EngineSettings, LlamaEngine
from reflectchat.engine.placement import experts_in_ram
from reflectchat.models.fit import GPU_MARGIN, plan, shape_from_gguf
from reflectchat.models.hardware import detect
from reflectchat.sizes import GIB

QUESTION = [ChatMessage("user", "Count.")]


def run(path: Path, settings: EngineSettings, tokens: int) -> tuple[float, int | None]:
    """Tokens/s of one answer, and the GPU memory the load added (NVML)."""
    before = nvml_used()
    engine = LlamaEngine(path, settings)
    after = nvml_used()
    generation = engine.generate(QUESTION, Sampling(temperature=0, max_tokens=tokens,
                                                    stop_loops=False))
    for _ in generation:
        pass
    engine.close()
    added = after - before if before is not None and after is not None else None
    return generation.stats.tokens_per_second or 0.0, added


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--layers", type=int, default=24)
    parser.add_argument("--embd", type=int, default=1024)
    parser.add_argument("--experts", type=int, default=32)
    parser.add_argument("--ctx", type=int, default=4096)
    parser.add_argument("--tokens", type=int, default=64)
    args = parser.parse_args()
    hw = detect()
    print(f"GPUs: {[g.name for g in hw.gpus] or 'none'}; llama.cpp offloads: "
          f"{hw.build_offloads}")
    shape_args = MoeShape(layers=args.layers, embd=args.embd, heads=args.embd // 64,
                          kv_heads=max(args.embd // 256, 1), experts=args.experts,
                          experts_used=4, expert_ff=args.embd, context=args.ctx)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        path = write_moe_gguf(Path(tmp) / "moe.gguf", shape_args, zeros=True)
        shape = shape_from_gguf([path])
        print(f"model: {shape.weights_bytes / GIB:.2f} GiB, experts "
              f"{sum(shape.expert_bytes) / GIB:.2f} GiB, {shape.n_layer} layers "
              f"(written in {time.perf_counter() - start:.0f} s)")
        half = shape.n_layer // 2
        moe_plan = plan(shape, hw, args.ctx)
        print(f"plan on this machine: {moe_plan.label}")
        if not hw.gpus:
            return
        # the experts of half the layers in RAM, every layer on the GPU
        moe = EngineSettings(n_gpu_layers=-1, n_ctx=args.ctx, template="chatml",
                             overrides=experts_in_ram(half))
        estimate = sum(shape.layer_bytes) - sum(shape.expert_bytes[:half]) + \
            shape.output_bytes + moe_plan.kv_bytes + moe_plan.compute_bytes
        # whole layers with about the same GPU memory
        per_layer = shape.layer_bytes[0] + moe_plan.kv_bytes // shape.n_layer
        ngl = min(int((estimate - moe_plan.compute_bytes) // per_layer), shape.n_layer)
        dense = EngineSettings(n_gpu_layers=ngl, n_ctx=args.ctx, template="chatml")
        for name, settings in ((f"experts of {half} layers in RAM", moe),
                               (f"{ngl} whole layers on the GPU", dense)):
            tps, added = run(path, settings, args.tokens)
            nvml = f"{added / GIB:.2f} GiB" if added is not None else "n/a"
            print(f"{name}: {tps:.1f} tok/s, NVML {nvml}")
        print(f"plan's GPU estimate for the first: {estimate / GIB:.2f} GiB "
              f"(+ {GPU_MARGIN / GIB:.0f} GiB margin when planning)")


if __name__ == "__main__":
    main()
