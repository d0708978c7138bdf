"""Check the memory plan against a real GPU: load a generated GGUF with several n_gpu_layers and
compare the plan's GPU estimate with what NVML measures the process adding.

Needs llama-cpp-python built with CUDA (on the device machine, from a repacked sdist):

    CMAKE_ARGS="-DGGML_CUDA=on -DCMAKE_CUDA_ARCHITECTURES=90" \\
        pip install --no-build-isolation --no-deps llama_cpp_python-*.tar.gz
    python bench/gpu_fit.py [--layers 32] [--embd 4096] [--ctx 4096 16384]

The model has Llama 3 8B's proportions (hidden 4096, 32 heads, 8 KV heads, feed-forward 14336)
with Q8_0 weights of zeros, so it is quick to write. Without an NVIDIA GPU it prints the plan
only. Figures go into docs/benchmarks.md with the card they came from.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support.shaped_model import write_shaped_gguf

from reflectchat.models.fit import GPU_MARGIN, plan, shape_from_gguf
from reflectchat.models.hardware import detect
from reflectchat.sizes import GIB


def nvml_used() -> int | None:
    try:
        import pynvml

        pynvml.nvmlInit()
        used = sum(int(pynvml.nvmlDeviceGetMemoryInfo(pynvml.nvmlDeviceGetHandleByIndex(i)).used)
                   for i in range(pynvml.nvmlDeviceGetCount()))
        pynvml.nvmlShutdown()
        return used
    except Exception:  # no NVIDIA driver or library
        return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--layers", type=int, default=32)
    parser.add_argument("--embd", type=int, default=4096)
    parser.add_argument("--ctx", type=int, nargs="+", default=[4096, 16384])
    args = parser.parse_args()
    import llama_cpp

    hw = detect()
    print(f"GPUs: {[g.name for g in hw.gpus] or 'none'}; llama.cpp offloads: "
          f"{hw.build_offloads}")
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        path = write_shaped_gguf(Path(tmp) / "shaped.gguf", n_layer=args.layers,
                                 n_embd=args.embd, n_head=args.embd // 128,
                                 n_head_kv=max(args.embd // 512, 1), n_ff=args.embd * 7 // 2,
                                 n_vocab=32000, dtype="q8_0", zeros=True)
        shape = shape_from_gguf([path])
        print(f"model: {shape.weights_bytes / GIB:.2f} GiB of Q8_0 weights, "
              f"{shape.n_layer} layers (written in {time.perf_counter() - start:.0f} s)")
        for n_ctx in args.ctx:
            planned = plan(shape, hw, n_ctx)
            print(f"\nctx {n_ctx}: plan {planned.label}, n_gpu_layers {planned.n_gpu_layers}, "
                  f"GPU estimate {(planned.gpu_bytes - GPU_MARGIN * len(planned.cards)) / GIB:.2f} "
                  "GiB without margins")
            for ngl in sorted({0, shape.n_layer // 2, shape.n_layer + 1,
                               planned.n_gpu_layers}):
                before = nvml_used()
                llm = llama_cpp.Llama(str(path), n_ctx=n_ctx, n_gpu_layers=ngl, verbose=False)
                after = nvml_used()
                llm.close()
                one = plan(shape, hw, n_ctx)
                layers = min(ngl, shape.n_layer)
                estimate = (sum(shape.layer_bytes[shape.n_layer - layers:])
                            + one.kv_bytes // shape.n_layer * layers
                            + (shape.output_bytes if ngl > shape.n_layer else 0)
                            + (one.compute_bytes if ngl else 0))
                measured = after - before if before is not None and after is not None else None
                ratio = f"{estimate / measured:.3f}" if measured else "n/a"
                print(f"  n_gpu_layers {ngl:3}: estimate {estimate / GIB:6.2f} GiB, NVML "
                      f"{'n/a' if measured is None else f'{measured / GIB:6.2f} GiB'}, "
                      f"estimate/measured {ratio}")


if __name__ == "__main__":
    main()
