"""Which quant to run: a row per quant with its plan, quality and speed, and the ★.

Per model, the ★ goes to the best quant that keeps quality (`quality.py`) and runs well:
- the largest that fits fully on the GPUs;
- else the largest predicted to decode at `USABLE_TPS` or more;
- else, when the speed is known, the largest within a quarter of the fastest (a smaller quant
  reads fewer bytes per token, so it runs faster);
- else the largest that keeps at least half its layers on the GPU, else the largest that runs.
A quant below the quality floor gets no ★; a model whose only runnable quants are below it
gets none. Across models, the pick for this machine is the largest model whose ★ quant is
usable (or the fastest, when none is).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from reflectchat.models.catalog import CatalogModel, Quant
from reflectchat.models.fit import ModelShape, Plan, Verdict
from reflectchat.models.quality import bits_per_weight, loses_quality

USABLE_TPS = 5.0  # tokens/s: a 1,000-token reasoning answer in about three minutes
NEAR = 0.75  # when nothing is usable: best quality at three quarters of the top speed or more
ENOUGH_ON_GPU = 0.5  # without speed figures, a partial offload keeping half the layers


@dataclass(frozen=True)
class Speed:
    decode_tps: float | None  # an upper bound when estimated
    decode_measured: bool
    prompt_tps: float | None
    prompt_measured: bool


@dataclass
class Row:
    group: str  # the model: its catalog name, or where a local file was found and its name
    group_key: str  # the catalog id, or "local:" and the folder or store entry
    quant_name: str  # the quant, or a local file's name or tag
    size: int  # bytes, all files
    shape: ModelShape
    plan: Plan
    speed: Speed
    source: str  # where the sizes come from: "file" on disk, "hub" header, or "catalog"
    downloaded: bool
    memory_measured: bool = False  # the plan's bytes are what llama.cpp allocated here
    path: Path | None = None
    model: CatalogModel | None = None
    quant: Quant | None = None
    recommended: bool = False
    reason: str = ""

    @property
    def bpw(self) -> float | None:
        return bits_per_weight(self.size, self.shape.params)

    @property
    def quality_loss(self) -> bool:
        return loses_quality(self.size, self.shape.params)

    @property
    def runs(self) -> bool:
        return self.plan.verdict is not Verdict.NO_FIT


def recommend(rows: Sequence[Row]) -> Row | None:
    """Mark the ★ quant among one model's rows with its reason; None when none deserves it."""
    pool = [r for r in rows if r.runs and not r.quality_loss]
    if not pool:
        return None
    chosen, reason = _choose(pool)
    chosen.recommended, chosen.reason = True, reason
    return chosen


def _choose(pool: list[Row]) -> tuple[Row, str]:
    def largest(rows: list[Row]) -> Row:
        return max(rows, key=lambda r: r.size)

    full = [r for r in pool if r.plan.verdict is Verdict.FULL_GPU]
    if full:
        return largest(full), "best quality that fits fully on the GPU"
    fast = [r for r in pool if (r.speed.decode_tps or 0) >= USABLE_TPS]
    if fast:
        best = largest(fast)
        return best, f"best quality at {USABLE_TPS:g} tok/s or more, {_where(best)}"
    timed = [r for r in pool if r.speed.decode_tps]
    if timed:
        fastest = max(r.speed.decode_tps or 0 for r in timed)
        best = largest([r for r in timed if (r.speed.decode_tps or 0) >= NEAR * fastest])
        return best, (f"no quant reaches {USABLE_TPS:g} tok/s here: the best quality within "
                      f"{1 - NEAR:.0%} of the fastest, {_where(best)}")
    partial = [r for r in pool if r.plan.verdict is Verdict.PARTIAL
               and r.plan.layers_on_gpu >= ENOUGH_ON_GPU * r.plan.n_layer]
    if partial:
        return largest(partial), "best quality with most layers on the GPU"
    best = largest(pool)
    return best, "best quality that fits in RAM" if best.plan.verdict is Verdict.CPU_ONLY \
        else "best quality that fits in GPU and RAM together"


def _where(row: Row) -> str:
    p = row.plan
    if p.experts_in_ram:
        return f"every layer on the GPU, {p.label}"
    if p.verdict is Verdict.PARTIAL:
        return f"{p.layers_on_gpu} of {p.n_layer} layers on the GPU"
    return "in RAM" if p.verdict is Verdict.CPU_ONLY else "on the GPU"


def best_pick(rows: Sequence[Row]) -> Row | None:
    """Across models: the largest model whose ★ quant is usable, else the fastest ★."""
    starred = [r for r in rows if r.recommended]
    if not starred:
        return None
    usable = [r for r in starred if r.plan.verdict is Verdict.FULL_GPU
              or (r.speed.decode_tps or 0) >= USABLE_TPS]
    if usable:
        return max(usable, key=lambda r: (r.shape.params, r.size))
    timed = [r for r in starred if r.speed.decode_tps]
    if timed:
        return max(timed, key=lambda r: r.speed.decode_tps or 0)
    return max(starred, key=lambda r: (r.shape.params, r.size))
