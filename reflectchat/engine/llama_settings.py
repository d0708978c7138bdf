"""What a 70B user tunes to fit a model: llama.cpp's load and context options, checked."""

from __future__ import annotations

from dataclasses import dataclass

from reflectchat.engine.base import KV_TYPES
from reflectchat.engine.errors import EngineError
from reflectchat.engine.placement import Override

_UNQUANTIZED = {"f32", "f16"}


@dataclass(frozen=True)
class EngineSettings:
    """What a 70B user tunes to fit a model (llama.cpp's load and context options)."""

    n_gpu_layers: int = 0  # -1: all layers
    n_ctx: int = 4096
    n_batch: int = 512
    flash_attn: bool = False
    type_k: str = "f16"
    type_v: str = "f16"
    tensor_split: tuple[float, ...] | None = None
    n_threads: int | None = None
    use_mmap: bool = True
    use_mlock: bool = False
    repack: bool | None = None  # llama.cpp's repacked CPU weights; None: cpu.repack_default()
    # tensors placed by pattern (placement.py: a mixture's experts in RAM), as llama.cpp's
    # --override-tensor: (pattern, buffer type) pairs
    overrides: tuple[Override, ...] = ()
    template: str | None = None  # a chat template by name (prompt.OWN or llama.cpp's built-in)
    pace: float | None = None  # at most this many tokens a second (the demo's replay)
    # the demo: a scripted model that replays recorded answers and can answer nothing else
    recording: bool = False

    def check(self) -> None:
        for name in (self.type_k, self.type_v):
            if name not in KV_TYPES:
                raise EngineError(f"Unknown KV cache type '{name}'; choose one of "
                                  f"{', '.join(KV_TYPES)}")
        if self.type_v not in _UNQUANTIZED and not self.flash_attn:
            raise EngineError(f"A quantized V cache ({self.type_v}) needs flash attention; "
                              "turn flash attention on or keep the V cache at f16")
        if self.n_ctx < 16:
            raise EngineError(f"A context of {self.n_ctx} tokens is too small; use at least 16")
