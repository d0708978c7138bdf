"""`reflectchat doctor`: is the installed llama.cpp built for this machine's accelerator?

A plain `pip install` builds llama-cpp-python for the CPU only, and nothing says so: a 70B then
runs at a fraction of the speed. This finds the accelerator (the same checks as
packaging/install.sh), asks the llama.cpp build what it can offload to, and when they disagree
prints the exact command that rebuilds it.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError, version

from reflectchat.hardware import command_output

# accelerator -> (what it is, llama.cpp build flag, marker in llama.cpp's system info)
BACKENDS = {
    "cuda": ("NVIDIA CUDA", "-DGGML_CUDA=on", "CUDA"),
    "metal": ("Apple Metal", "-DGGML_METAL=on", "Metal"),
    "rocm": ("AMD ROCm", "-DGGML_HIP=on", "ROCm"),
    "vulkan": ("Vulkan", "-DGGML_VULKAN=on", "Vulkan"),
}


@dataclass
class Report:
    reflectchat: str
    python: str
    llama_cpp_python: str
    build_offloads: bool  # llama.cpp can put layers on a GPU
    build_backends: list[str]  # accelerators the build was compiled for
    accelerator: str | None  # what this machine has (cuda, metal, rocm, vulkan) or None
    devices: list[str]  # e.g. GPU names from nvidia-smi
    problem: str | None
    fix: str | None


def detect_accelerator() -> tuple[str | None, list[str]]:
    """The machine's accelerator and its devices, in the order install.sh checks them."""
    if platform.system() == "Darwin" and platform.machine() == "arm64":
        return "metal", [platform.processor() or "Apple Silicon"]
    gpus = command_output("nvidia-smi", "-L")
    if gpus:
        return "cuda", [line.split(" (UUID")[0] for line in gpus.splitlines() if line.strip()]
    rocm = command_output("rocminfo")
    if rocm and "gfx" in rocm:
        names = sorted({w for w in rocm.split() if w.startswith("gfx") and w[3:4].isdigit()})
        return "rocm", names
    if command_output("vulkaninfo", "--summary") is not None:
        return "vulkan", []
    return None, []


def build_backends() -> tuple[bool, list[str]]:
    """Whether llama.cpp can offload, and the accelerators it was compiled for."""
    import llama_cpp

    info = llama_cpp.llama_print_system_info().decode(errors="replace")
    compiled = [name for name, (_, _, marker) in BACKENDS.items() if marker in info]
    return bool(llama_cpp.llama_supports_gpu_offload()), compiled


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "not installed"


def diagnose() -> Report:
    offloads, compiled = build_backends()
    accelerator, devices = detect_accelerator()
    llama_version = _version("llama_cpp_python")
    problem = fix = None
    # (a build that offloads but names no backend we know is given the benefit of the doubt)
    if accelerator is not None and accelerator not in compiled and (compiled or not offloads):
        what, flag, _ = BACKENDS[accelerator]
        built = ", ".join(BACKENDS[c][0] for c in compiled) or "the CPU only"
        problem = (f"This machine has {what} ({'; '.join(devices) or 'found'}), but llama.cpp "
                   f"was built for {built}: models run on the CPU, many times slower.")
        fix = (f'CMAKE_ARGS="{flag}" {sys.executable} -m pip install --force-reinstall '
               f"--no-deps --no-cache-dir llama-cpp-python=={llama_version}")
    return Report(_version("reflectchat"), f"{platform.python_version()} ({sys.executable})",
                  llama_version, offloads, compiled, accelerator, devices, problem, fix)


def run_doctor(args: argparse.Namespace) -> int:
    report = diagnose()
    if args.json:
        print(json.dumps(asdict(report), indent=2))
        return 1 if report.problem else 0
    built = ", ".join(BACKENDS[c][0] for c in report.build_backends) or "CPU only"
    found = BACKENDS[report.accelerator][0] if report.accelerator else "none found"
    print(f"reflectchat {report.reflectchat}, Python {report.python}")
    print(f"llama-cpp-python {report.llama_cpp_python}: built for {built}; "
          f"can offload to a GPU: {'yes' if report.build_offloads else 'no'}")
    print(f"Accelerator on this machine: {found}"
          + (f" ({'; '.join(report.devices)})" if report.devices else ""))
    if report.problem:
        print(f"\nProblem: {report.problem}")
        print(f"Fix (rebuilds llama.cpp; takes several minutes):\n  {report.fix}")
        print("or run packaging/install.sh again, which detects the accelerator.")
        return 1
    if report.accelerator is None:
        print("\nOK: no GPU was found, and the CPU build is the right one. (An NVIDIA GPU needs "
              "nvidia-smi; AMD, rocminfo; Vulkan, vulkaninfo, to be found.)")
    else:
        print(f"\nOK: llama.cpp can use this machine's {found}.")
    return 0
