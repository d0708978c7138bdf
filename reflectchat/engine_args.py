"""The model and engine settings the command line asks for, shared by `ask` and the UI."""

from __future__ import annotations

import argparse
from dataclasses import replace
from typing import TYPE_CHECKING

from reflectchat.engine.errors import EngineError
from reflectchat.model_choice import ModelChoice, choose_model
from reflectchat.reflection import TagFormat

if TYPE_CHECKING:  # the engine imports llama_cpp, which loads only once a command runs
    from reflectchat.engine.llama import EngineSettings

DEFAULT_CTX = 8192


def choice_from_args(args: argparse.Namespace, model: str | None, quant: str | None,
                     demo: bool = False) -> ModelChoice:
    """The model to run (no model: the demo), with `--format` overriding its tag format."""
    choice = choose_model(model, quant, demo)
    return replace(choice, tag_format=TagFormat(args.format)) if args.format else choice


def engine_settings(args: argparse.Namespace, choice: ModelChoice) -> EngineSettings:
    import llama_cpp

    from reflectchat.engine.llama import EngineSettings

    gpu_layers = args.gpu_layers
    if gpu_layers is None:
        gpu_layers = -1 if llama_cpp.llama_supports_gpu_offload() else 0
    n_ctx = args.ctx or min(DEFAULT_CTX, choice.context_length or DEFAULT_CTX)
    try:
        split = tuple(float(x) for x in args.tensor_split.split(",")) if args.tensor_split else None
    except ValueError:
        raise EngineError(f"--tensor-split takes numbers like 3,1, not {args.tensor_split!r}") \
            from None
    return EngineSettings(
        n_gpu_layers=gpu_layers, n_ctx=n_ctx, flash_attn=args.flash_attn,
        type_k=args.cache_type_k, type_v=args.cache_type_v, tensor_split=split,
        n_threads=args.threads, use_mmap=not args.no_mmap, use_mlock=args.mlock,
    )
