"""Loading a GGUF with as many GPU layers as fit: the memory plan's number first, then fewer
after each failed load (estimates err, and VRAM is shared with other programs)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from reflectchat.engine.base import Backend
from reflectchat.engine.errors import EngineError
from reflectchat.engine.gguf_file import shard_paths
from reflectchat.engine.gguf_header import HeaderError
from reflectchat.engine.llama import EngineSettings, LlamaEngine
from reflectchat.models.fit import Verdict, plan, shape_from_gguf
from reflectchat.models.hardware import detect


def planned_gpu_layers(path: Path, n_ctx: int, type_k: str, type_v: str,
                       flash_attn: bool) -> int:
    """The GPU layers the memory plan gives this file on this machine (-1: all of them)."""
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
            fallback = (f"Loaded with {engine.gpu_layers} GPU layers after the load with "
                        f"{failures[0]} failed (probably not enough GPU memory).")
            engine.load_note = " ".join(n for n in (fallback, engine.load_note) if n)
        return engine


def fewer_layers(layers: int, path: Path) -> int:
    if layers < 0:
        try:
            layers = shape_from_gguf(shard_paths(path)).n_layer + 1
        except (HeaderError, EngineError, OSError, ValueError):
            layers = 128  # a header we cannot read: step down from a large count
    return layers * 2 // 3
