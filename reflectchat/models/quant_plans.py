"""A memory plan for every catalog quant on this machine: what `models`, `pull --quant auto` and
the app's model picker show."""

from __future__ import annotations

import os
from collections.abc import Collection
from dataclasses import dataclass

import httpx

from reflectchat.engine.gguf_header import HeaderError, fetch
from reflectchat.models.catalog import CatalogModel, Quant, load_catalog
from reflectchat.models.choice import downloaded_files
from reflectchat.models.fit import (
    ModelShape,
    Plan,
    plan,
    recommend,
    shape_from_catalog,
    shape_from_gguf,
    shape_from_headers,
)
from reflectchat.models.hardware import Hardware
from reflectchat.models.pull import resolve_url


@dataclass
class Row:
    model: CatalogModel
    quant: Quant
    plan: Plan
    source: str  # where the sizes come from: "file" on disk, "hub" header, or "catalog"
    downloaded: bool
    recommended: bool = False


def _hub_shape(entry: CatalogModel, quant: Quant) -> ModelShape:
    """Exact sizes from the headers of the quant's files on the hub (range requests)."""
    from huggingface_hub.utils import build_hf_headers

    headers = [fetch(resolve_url(entry.repo, f), f"{entry.repo}/{f}", build_hf_headers())
               for f in quant.files]
    return shape_from_headers(headers, quant.files[0])


def fit_rows(hw: Hardware, n_ctx: int, cache_type: str = "f16",
             from_hub: Collection[str] = (), notes: list[str] | None = None) -> list[Row]:
    """A plan for every catalog quant. For models in `from_hub`, quants not on disk are
    planned from their headers on the hub; if the hub cannot be read, from the catalog's
    numbers, and `notes` says so."""
    rows = []
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")
    for entry in load_catalog().models:
        plans = []
        for quant in entry.quants:
            files = downloaded_files(entry, quant)
            shape, source = None, "file" if files else "catalog"
            if files:
                shape = shape_from_gguf(files)
            elif entry.id in from_hub and not offline:
                try:
                    shape, source = _hub_shape(entry, quant), "hub"
                except (HeaderError, httpx.HTTPError, OSError) as exc:
                    if notes is not None:
                        notes.append(f"{entry.id} {quant.name}: could not read its header "
                                     f"from the hub ({exc}); sizes are the catalog's")
            if shape is None:
                shape = shape_from_catalog(entry.arch, quant.size)
            quant_plan = plan(shape, hw, n_ctx, cache_type, cache_type)
            rows.append(Row(entry, quant, quant_plan, source, files is not None))
            plans.append((quant.size, quant_plan))
        best = recommend(plans)
        if best is not None:
            rows[len(rows) - len(plans) + best].recommended = True
    return rows
