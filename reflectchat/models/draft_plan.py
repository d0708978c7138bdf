"""Where a draft model goes and what it may gain: its weights, KV cache and compute buffer
beside the model's plan, on the GPU when the model is wholly there and a card has room left
for all of it, else in RAM; and the speed-up to expect, from the draft's cost per token
against the model's (what each reads of its weights: decoding waits on memory) and an
assumed acceptance (Leviathan et al., arXiv 2211.17192)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from reflectchat.engine.gguf_file import check_before_load, shard_paths
from reflectchat.models.catalog import CatalogModel, load_catalog
from reflectchat.models.fit import (
    ModelShape,
    Plan,
    Verdict,
    compute_bytes,
    kv_bytes_per_layer,
    shape_from_gguf,
)
from reflectchat.sizes import GIB

ACCEPTANCES = (0.6, 0.75)  # the speed-ups shown: public drafts keep 55-75% (docs/benchmarks.md)


@dataclass(frozen=True)
class DraftPlan:
    weights: int
    kv: int
    compute: int
    gpu: str | None  # the card it goes on; None: RAM
    cost: float  # what a draft token reads over what a model token reads
    speedups: tuple[tuple[float, float], ...]  # (acceptance, expected speed-up)

    @property
    def bytes(self) -> int:
        return self.weights + self.kv + self.compute


def speedup(acceptance: float, drafted: int, cost: float, check: float = 1.0) -> float:
    """Tokens per model step over the time of a step and its drafting, in model steps
    (`check`: what the model's decode of the drafted tokens and its own costs, over one
    token's decode; 1 where decoding waits on memory)."""
    a, k = acceptance, drafted
    tokens = (1 - a ** (k + 1)) / (1 - a) if a < 1 else k + 1
    return tokens / (check + k * cost)


def _read(shape: ModelShape) -> int:
    """What one token reads of a model's weights: every layer and the output layer (the
    embedding's whole matrix where the output reuses it; else one row of it)."""
    return sum(shape.layer_bytes) + shape.output_bytes + \
        (shape.embd_bytes if shape.output_tied else 0)


def plan_draft(model: Plan, model_shape: ModelShape, path: Path, n_ctx: int, drafted: int,
               type_k: str = "f16", type_v: str = "f16", flash_attn: bool = False) -> DraftPlan:
    """The plan of the draft GGUF at `path` (read from its header) beside `model`'s;
    EngineError, HeaderError or OSError where its file cannot be read."""
    check_before_load(path)
    shards = shard_paths(path)
    draft, draft_size = shape_from_gguf(shards), sum(p.stat().st_size for p in shards)
    kv = kv_bytes_per_layer(draft, n_ctx, type_k, type_v) * draft.n_layer
    compute = compute_bytes(draft, n_ctx, flash_attn)
    need = draft_size + kv + compute
    gpu = None
    if model.verdict is Verdict.FULL_GPU and model.cards:
        card = max(model.cards, key=lambda c: c.gpu.free_bytes - c.bytes)
        if card.gpu.free_bytes - card.bytes >= need:
            gpu = card.gpu.name
    cost = _read(draft) / max(_read(model_shape), 1)
    return DraftPlan(draft_size, kv, compute, gpu, cost,
                     tuple((a, speedup(a, drafted, cost)) for a in ACCEPTANCES))


def catalog_draft(model: CatalogModel | None) -> str | None:
    """The catalog's draft for a model, with its smallest quant's size, and how to use it."""
    if model is None or not model.draft:
        return None
    draft = load_catalog().get(model.draft)
    smallest = min(draft.quants, key=lambda q: q.size)
    return (f"draft: {draft.id} ({smallest.name} {smallest.size / GIB:.1f} GiB) for "
            f"speculative decoding, --draft-model {draft.id}")
