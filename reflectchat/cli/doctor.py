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
from dataclasses import asdict, dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from reflectchat.cli.output import EXIT_FAILED, EXIT_OK
from reflectchat.engine.errors import EngineError
from reflectchat.engine.llama_build import BACKENDS, build_backends
from reflectchat.models.hardware import detect_accelerator
from reflectchat.untrusted import visible


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
    # draft pairs (config.toml's, and --model with --draft-model): each one usable or why not
    drafts: list[dict[str, str | None]] = field(default_factory=list)


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
        found = visible("; ".join(devices)) or "found"
        problem = (f"This machine has {what} ({found}), but llama.cpp was built for {built}: "
                   "models run on the CPU, many times slower.")
        fix = (f'CMAKE_ARGS="{flag}" {sys.executable} -m pip install --force-reinstall '
               f"--no-deps --no-cache-dir llama-cpp-python=={llama_version}")
    return Report(_version("reflectchat"), f"{platform.python_version()} ({sys.executable})",
                  llama_version, offloads, compiled, accelerator, devices, problem, fix)


def draft_pairs(args: argparse.Namespace) -> list[dict[str, str | None]]:
    """Each pair a user set up: config.toml's `[models."ID"] draft_model`, and --model with
    --draft-model; each with why it cannot draft (None: it can)."""
    from reflectchat.config import ConfigFile
    from reflectchat.engine.drafting import pair_problem
    from reflectchat.models.catalog import CatalogError
    from reflectchat.models.choice import choose_model

    asked = [(args.model, args.draft_model)] if args.model and args.draft_model else []
    tables = ConfigFile().model_tables()
    asked += [(name, str(t["draft_model"])) for name, t in tables.items()
              if isinstance(t.get("draft_model"), str)]
    pairs: list[dict[str, str | None]] = []
    for model, draft in asked:
        try:
            paths = [choose_model(name, None, False).path for name in (model, draft)]
            problem = pair_problem(paths[0], paths[1])
        except (CatalogError, EngineError) as exc:
            problem = str(exc)
        pairs.append({"model": model, "draft": draft, "problem": problem})
    return pairs


def run(args: argparse.Namespace) -> int:
    report = diagnose()
    report.drafts = draft_pairs(args)
    if args.json:
        print(json.dumps(asdict(report), indent=2))
        return EXIT_FAILED if report.problem else EXIT_OK
    built = ", ".join(BACKENDS[c][0] for c in report.build_backends) or "CPU only"
    found = BACKENDS[report.accelerator][0] if report.accelerator else "none found"
    print(f"reflectchat {report.reflectchat}, Python {report.python}")
    print(f"llama-cpp-python {report.llama_cpp_python}: built for {built}; "
          f"can offload to a GPU: {'yes' if report.build_offloads else 'no'}")
    print(f"Accelerator on this machine: {found}"
          + (f" ({visible('; '.join(report.devices))})" if report.devices else ""))
    for pair in report.drafts:
        draft, model = (visible(Path(str(pair[k])).name) for k in ("draft", "model"))
        print(f"Draft model {draft} for {model}: " + (
            f"unusable: {visible(str(pair['problem']))}" if pair["problem"] else "usable"))
    if report.problem:
        print(f"\nProblem: {report.problem}")
        print(f"Fix (rebuilds llama.cpp; takes several minutes):\n  {report.fix}")
        print("or run packaging/install.sh again, which detects the accelerator.")
        return EXIT_FAILED
    if report.accelerator is None:
        print("\nOK: no GPU was found, and the CPU build is the right one. (An NVIDIA GPU needs "
              "nvidia-smi; AMD, rocminfo; Vulkan, vulkaninfo, to be found.)")
    else:
        print(f"\nOK: llama.cpp can use this machine's {found}.")
    return EXIT_OK
