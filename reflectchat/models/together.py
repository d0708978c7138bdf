"""Whether two local models can be loaded at once: the memory plan (`fit.py`) of the first on
this machine, then of the second in what the first leaves (each GPU's free memory less the
first's use of it, RAM less the first's). They fit together when the second gets the same
plan there as alone; otherwise a comparison runs them one after the other."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from reflectchat.engine.errors import EngineError
from reflectchat.engine.gguf_file import shard_paths
from reflectchat.engine.gguf_header import HeaderError
from reflectchat.models.fit import Plan, Verdict, plan, shape_from_gguf
from reflectchat.models.hardware import Hardware
from reflectchat.sizes import size_text


@dataclass(frozen=True)
class Together:
    fits: bool
    why: str  # in a sentence's middle: "both fit in RAM (1.2 GiB + 1.3 GiB of 20 GiB)"


def left_after(hw: Hardware, used: Plan) -> Hardware:
    """The machine as a second model sees it once `used` is loaded."""
    gpus = [replace(g, free_bytes=max(g.free_bytes - sum(c.bytes for c in used.cards
                                                         if c.gpu == g), 0))
            for g in hw.gpus]
    return replace(hw, gpus=gpus, ram_total_bytes=max(hw.ram_total_bytes - used.ram_bytes, 0)
                   if hw.ram_total_bytes else 0,
                   ram_available_bytes=max(hw.ram_available_bytes - used.ram_bytes, 0))


def fit_together(a: Path, b: Path, n_ctx_a: int, n_ctx_b: int, hw: Hardware) -> Together:
    """Whether models `a` and `b` (with their contexts) fit in this machine's memory at once."""
    try:
        shape_a = shape_from_gguf(shard_paths(a))
        shape_b = shape_from_gguf(shard_paths(b))
    except (HeaderError, EngineError, OSError, ValueError) as exc:
        return Together(False, f"a model's header could not be read to plan both ({exc})")
    first = plan(shape_a, hw, n_ctx_a)
    alone = plan(shape_b, hw, n_ctx_b)
    beside = plan(shape_b, left_after(hw, first), n_ctx_b)
    gpu = sum(g.total_bytes for g in hw.gpus)
    where = f"GPU memory ({size_text(first.gpu_bytes)} + {size_text(beside.gpu_bytes)} of " \
        f"{size_text(gpu)}) and RAM" if gpu and (first.gpu_bytes or beside.gpu_bytes) else "RAM"
    amounts = f"{size_text(first.ram_bytes)} + {size_text(alone.ram_bytes)} of " \
        f"{size_text(hw.ram_plan_bytes)}"
    if first.verdict is Verdict.NO_FIT or beside.verdict is Verdict.NO_FIT or \
            beside.n_gpu_layers < alone.n_gpu_layers:
        return Together(False, f"both do not fit in {where} at once ({amounts} in RAM)")
    return Together(True, f"both fit in {where} at once ({amounts} in RAM)")
