"""The model and engine settings the command line asks for, shared by `ask` and the UI."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from reflectchat.config import ConfigFile
from reflectchat.endpoints import resolve_endpoint
from reflectchat.engine.base import Backend, Sampling
from reflectchat.engine.errors import EngineError
from reflectchat.model_choice import ModelChoice, choose_model
from reflectchat.reflection import TagFormat

if TYPE_CHECKING:  # the engine imports llama_cpp, which loads only once a command runs
    from reflectchat.engine.llama import EngineSettings

DEFAULT_CTX = 8192


def choice_from_args(args: argparse.Namespace, model: str | None, quant: str | None,
                     demo: bool = False) -> ModelChoice:
    """The model to run (no model: the demo; with --endpoint: the server's model), with
    `--format` overriding its tag format."""
    if getattr(args, "endpoint", None):
        choice = remote_choice(args, model)
    else:
        choice = choose_model(model, quant, demo)
    return replace(choice, tag_format=TagFormat(args.format)) if args.format else choice


def remote_choice(args: argparse.Namespace, model: str | None) -> ModelChoice:
    config = ConfigFile()
    endpoint = resolve_endpoint(args.endpoint, config.endpoint_tables(), args.api_key_env)
    if model:
        endpoint = replace(endpoint, model=model)
    name = endpoint.model or "the server's model"
    return ModelChoice(Path(), f"{name} @ {endpoint.host}", endpoint.format or TagFormat.AUTO,
                       "", Sampling(), endpoint.context, model_id=f"{name} @ {endpoint.host}",
                       endpoint=endpoint)


def settled_choice(choice: ModelChoice, engine: Backend) -> ModelChoice:
    """Once a server has answered, name the model it actually serves."""
    model = getattr(engine, "model", None)
    if choice.endpoint is None or not model:
        return choice
    label = f"{model} @ {choice.endpoint.host}"
    return replace(choice, label=label, model_id=label,
                   endpoint=replace(choice.endpoint, model=model))


def make_engine(args: argparse.Namespace, choice: ModelChoice,
                progress: Callable[[float], bool] | None = None) -> Backend:
    """The backend for a choice: a remote server's, or llama.cpp in this process."""
    if choice.endpoint is not None:
        from reflectchat.engine.remote import RemoteEngine

        return RemoteEngine(choice.endpoint, choice.endpoint.model, choice.tag_format)
    return load_with_fallback(choice.path, engine_settings(args, choice), progress)


def planned_gpu_layers(path: Path, n_ctx: int, type_k: str, type_v: str,
                       flash_attn: bool) -> int:
    """The GPU layers the memory plan gives this file on this machine (-1: all of them)."""
    from reflectchat.engine.gguf_file import shard_paths
    from reflectchat.fit import Verdict, plan, shape_from_gguf
    from reflectchat.gguf_header import HeaderError
    from reflectchat.hardware import detect

    try:
        shape = shape_from_gguf(shard_paths(path))
    except (HeaderError, EngineError, OSError, ValueError):
        return -1  # unreadable here: llama.cpp will say why when it loads it
    chosen = plan(shape, detect(), n_ctx, type_k, type_v, flash_attn)
    return -1 if chosen.verdict is Verdict.FULL_GPU else chosen.n_gpu_layers


def load_with_fallback(path: Path, settings: EngineSettings,
                       progress: Callable[[float], bool] | None = None) -> Backend:
    """Load; if a load with layers on the GPU fails (estimates err, and VRAM is shared with
    other programs), try again with a third fewer each time down to none. The engine's
    `load_note` says what happened."""
    from reflectchat.engine.llama import LlamaEngine

    failures: list[str] = []
    layers = settings.n_gpu_layers
    while True:
        try:
            engine = LlamaEngine(path, replace(settings, n_gpu_layers=layers), progress)
        except EngineError as exc:
            if layers == 0 or "cancelled" in str(exc):
                if failures:
                    raise EngineError(f"{exc} (also failed with {', '.join(failures)})") \
                        from None
                raise
            failures.append(f"{'all' if layers < 0 else layers} GPU layers")
            layers = fewer_layers(layers, path)
            continue
        if failures:
            engine.load_note = (f"Loaded with {engine.gpu_layers} GPU layers after the load "
                                f"with {failures[0]} failed (probably not enough GPU memory)")
        return engine


def fewer_layers(layers: int, path: Path) -> int:
    if layers < 0:
        from reflectchat.engine.gguf_file import shard_paths
        from reflectchat.fit import shape_from_gguf
        from reflectchat.gguf_header import HeaderError

        try:
            layers = shape_from_gguf(shard_paths(path)).n_layer + 1
        except (HeaderError, EngineError, OSError, ValueError):
            layers = 128  # a header we cannot read: step down from a large count
    return layers * 2 // 3


def check_args(args: argparse.Namespace, choice: ModelChoice) -> None:
    """Reject bad runtime options before anything loads (they do not apply to a server)."""
    if choice.endpoint is None:
        engine_settings(args, choice).check()


def engine_settings(args: argparse.Namespace, choice: ModelChoice) -> EngineSettings:
    import llama_cpp

    from reflectchat.engine.llama import EngineSettings

    n_ctx = args.ctx or min(DEFAULT_CTX, choice.context_length or DEFAULT_CTX)
    gpu_layers = args.gpu_layers
    if gpu_layers is None:  # as many as the memory plan says fit
        gpu_layers = planned_gpu_layers(choice.path, n_ctx, args.cache_type_k,
                                        args.cache_type_v, args.flash_attn) \
            if llama_cpp.llama_supports_gpu_offload() else 0
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
