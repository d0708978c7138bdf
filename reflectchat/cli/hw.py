"""`reflectchat hw`: what this machine offers a model."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from reflectchat.cli.output import EXIT_OK
from reflectchat.engine.cpu import default_threads, repack_default
from reflectchat.engine.llama_build import BACKENDS
from reflectchat.models.hardware import detect
from reflectchat.sizes import size_text
from reflectchat.untrusted import visible


def run(args: argparse.Namespace) -> int:
    hw = detect()
    threads = default_threads()
    if args.json:
        print(json.dumps({**asdict(hw), "llama_threads": asdict(threads)}, indent=2))
        return EXIT_OK
    print(f"CPU: {hw.cpu_threads} threads")
    print(f"llama.cpp threads: {threads.text()}; --threads N sets both")
    repack = "on" if repack_default() else "off (this CPU has AMX: llama.cpp #20824)"
    print(f"Repacked CPU weights: {repack} unless they would not fit; --repack on|off sets it")
    print(f"RAM: {size_text(hw.ram_total_bytes)} total, "
          f"{size_text(hw.ram_available_bytes)} free now; plans use "
          f"{size_text(hw.ram_plan_bytes)} (the rest is left to the system)")
    if not hw.gpus:
        print("GPU: no GPU found (NVIDIA through NVML or nvidia-smi, AMD through sysfs, "
              "Apple Silicon)")
    for i, gpu in enumerate(hw.gpus):
        kind = "unified memory usable by the GPU" if gpu.unified else "VRAM"
        print(f"GPU {i}: {visible(gpu.name)}: {size_text(gpu.total_bytes)} {kind}, "
              f"{size_text(gpu.free_bytes)} free")
    built = ", ".join(BACKENDS[b][0] for b in hw.build_backends) or "the CPU only"
    verdict = "can" if hw.build_offloads else "cannot"
    print(f"llama.cpp: built for {built}; it {verdict} offload layers to a GPU")
    if hw.gpus and not hw.build_offloads:
        print("  The GPU above goes unused: `reflectchat doctor` prints the rebuild command.")
    return EXIT_OK
