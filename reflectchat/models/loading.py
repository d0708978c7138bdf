"""Loading a GGUF with as many GPU layers as fit: the memory plan's number first, then fewer
after each failed load (estimates err, and VRAM is shared with other programs). Every load is
measured: what llama.cpp allocated, or that it ran out of memory (`measured.py`), so the next
plan for this file starts from what really happened."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from reflectchat.engine.base import Backend, GenerationStats
from reflectchat.engine.cpu import repack_default
from reflectchat.engine.drafting import DRAFT_MOST
from reflectchat.engine.errors import EngineError
from reflectchat.engine.gguf_file import shard_paths
from reflectchat.engine.gguf_header import HeaderError
from reflectchat.engine.llama import EngineSettings, LlamaEngine
from reflectchat.models.draft_plan import plan_draft
from reflectchat.models.fit import ModelShape, Verdict, plan, shape_from_gguf
from reflectchat.models.hardware import detect
from reflectchat.models.measured import Measurements, file_key, machine_key


@dataclass(frozen=True)
class PlannedLoad:
    gpu_layers: int  # -1: all of them
    repack: bool  # the CPU layers' weights repacked
    experts_in_ram: int = 0  # a mixture of experts: the first N layers' experts kept in RAM


def planned_load(path: Path, n_ctx: int, type_k: str, type_v: str, flash_attn: bool,
                 tensor_split: Sequence[float] | None = None, gpu_layers: int | None = None,
                 repack: bool | None = None) -> PlannedLoad:
    """The GPU layers the memory plan gives this file on this machine, below any count that
    failed for memory here before and at most `gpu_layers`; whether its CPU layers are
    repacked (`repack` None: where this CPU gains and the copies fit); and for a mixture of
    experts, how many layers' experts stay in RAM."""
    try:
        shape = shape_from_gguf(shard_paths(path))
    except (HeaderError, EngineError, OSError, ValueError):
        # unreadable here: llama.cpp will say why when it loads it
        return PlannedLoad(-1, repack_default() if repack is None else repack)
    hw = detect()
    cap = Measurements().memory_cap(machine_key(hw), file_key(path), n_ctx)
    if gpu_layers is not None and gpu_layers >= 0:
        cap = gpu_layers if cap is None else min(cap, gpu_layers)
    chosen = plan(shape, hw, n_ctx, type_k, type_v, flash_attn, tensor_split, cap, repack)
    layers = -1 if chosen.verdict is Verdict.FULL_GPU or chosen.experts_in_ram \
        else chosen.n_gpu_layers
    return PlannedLoad(layers, chosen.repack, chosen.experts_in_ram)


def draft_fits_on_gpu(path: Path, draft: Path, n_ctx: int, type_k: str, type_v: str,
                      flash_attn: bool, tensor_split: Sequence[float] | None = None) -> bool:
    """Whether the memory plan puts the draft model on a GPU beside the model (draft_plan.py);
    False where either header cannot be read (llama.cpp will say why when it loads)."""
    try:
        shape = shape_from_gguf(shard_paths(path))
        chosen = plan(shape, detect(), n_ctx, type_k, type_v, flash_attn, tensor_split)
        return plan_draft(chosen, shape, draft, n_ctx, DRAFT_MOST, type_k, type_v,
                          flash_attn).gpu is not None
    except (HeaderError, EngineError, OSError, ValueError):
        return False


def load_with_fallback(path: Path, settings: EngineSettings,
                       progress: Callable[[float], bool] | None = None) -> Backend:
    """Load; if a load with layers on the GPU fails (estimates err, and VRAM is shared with
    other programs), try again with a third fewer each time down to none. The engine's
    `load_note` says what happened; each attempt is recorded in the measurements."""
    failures: list[str] = []
    layers = settings.n_gpu_layers
    record = _Recorder(path, settings.n_ctx)
    while True:
        try:
            engine = LlamaEngine(path, replace(settings, n_gpu_layers=layers), progress)
        except EngineError as exc:
            if layers == 0 or "cancelled" in str(exc):
                if failures:
                    raise EngineError(f"{exc} (also failed with {', '.join(failures)})") \
                        from None
                raise
            record.failed(layers)
            failures.append(f"{'all' if layers < 0 else layers} GPU layers")
            layers = fewer_layers(layers, path)
            continue
        record.loaded(engine)
        if failures:
            fallback = (f"Loaded with {engine.gpu_layers} GPU layers after the load with "
                        f"{failures[0]} failed (probably not enough GPU memory).")
            engine.load_note = " ".join(n for n in (fallback, engine.load_note) if n)
        return engine


@functools.cache
def this_machine() -> str:
    """The machine's key: its CPU, RAM and GPUs do not change while we run."""
    return machine_key(detect())


@functools.cache
def _shape(path: Path) -> ModelShape | None:
    """The file's shape from its header, read once; None when it cannot be read."""
    try:
        return shape_from_gguf(shard_paths(path))
    except (HeaderError, EngineError, OSError, ValueError):
        return None


def measure_answer(engine: Backend, stats: GenerationStats) -> None:
    """Record how fast a model run here answered (a paced demo or a server: nothing)."""
    source = engine.speed_source
    if source is None or stats.time_to_first_token_s is None:
        return
    layers = source.offloaded
    where = "cpu" if layers == 0 else "gpu" if layers > engine.layer_count else "split"
    decode_s = stats.total_s - stats.time_to_first_token_s
    shape = _shape(source.path)
    Measurements().record_speed(
        this_machine(), file_key(source.path), source.n_ctx, layers, where,
        shape.active_params if shape else 0,
        (stats.prompt_evaluated or 0, stats.time_to_first_token_s),
        (max(stats.completion_tokens - 1, 0), decode_s if decode_s > 0 else None))


class _Recorder:
    """Each load's outcome. A failed load counts as out of memory once a load with fewer GPU
    layers works (a file that fails at every count is broken, not too big)."""

    def __init__(self, path: Path, n_ctx: int) -> None:
        self.measurements = Measurements()
        self.machine = this_machine()
        self.file, self.n_ctx, self.path = file_key(path), n_ctx, path
        self.failures: list[int] = []

    def failed(self, layers: int) -> None:
        self.failures.append(layers if layers >= 0 else _all_layers(self.path))

    def loaded(self, engine: LlamaEngine) -> None:
        for count in self.failures:
            self.measurements.record_load(self.machine, self.file, self.n_ctx, count, None)
        self.measurements.record_load(self.machine, self.file, self.n_ctx,
                                      engine.offloaded_layers, engine.buffers)


def _all_layers(path: Path) -> int:
    shape = _shape(path)
    return shape.n_layer + 1 if shape else 128  # unreadable: step down from a large count


def fewer_layers(layers: int, path: Path) -> int:
    if layers < 0:
        layers = _all_layers(path)
    return layers * 2 // 3
