"""What a 70B user tunes to fit a model: llama.cpp's load and context options, checked."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from reflectchat.engine.base import KV_TYPES, SPECULATION
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
    # speculative decoding (token_loop.py): "off", "ngram" (from the context) or "draft" (a
    # second, small GGUF that shares the model's vocabulary)
    speculation: str = "off"
    draft_model: Path | None = None
    draft_max: int | None = None  # the most tokens drafted at a time; None: drafting.py's
    draft_p_min: float | None = None  # a draft model stops below this; None: drafting.py's
    draft_gpu_layers: int = 0  # the draft model's layers on a GPU (-1: all)

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
        if self.speculation not in SPECULATION:
            raise EngineError(f"Unknown speculation {self.speculation!r}; choose one of "
                              f"{', '.join(SPECULATION)}")
        if (self.speculation == "draft") != (self.draft_model is not None):
            raise EngineError("Drafting with a model needs a draft model (--draft-model)")
        if self.draft_max is not None and not 1 <= self.draft_max <= 64:
            raise EngineError(f"--draft-max takes 1 to 64 tokens, not {self.draft_max}")
        if self.draft_p_min is not None and not 0 <= self.draft_p_min < 1:
            raise EngineError(f"--draft-p-min takes a probability from 0 to below 1, "
                              f"not {self.draft_p_min}")
