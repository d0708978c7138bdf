"""`reflectchat models`: every catalog model and quant, and how each fits this machine."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Collection
from dataclasses import dataclass

import httpx
from rich.console import Console
from rich.table import Table

from reflectchat.catalog import CatalogError, CatalogModel, Quant, load_catalog
from reflectchat.fit import (
    GIB,
    ModelShape,
    Plan,
    plan,
    recommend,
    shape_from_catalog,
    shape_from_gguf,
    shape_from_headers,
)
from reflectchat.gguf_header import HeaderError, fetch
from reflectchat.hardware import Hardware, detect
from reflectchat.model_choice import downloaded_files
from reflectchat.pull import resolve_url


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


def run_models_table(args: argparse.Namespace) -> int:
    hw = detect()
    n_ctx = args.ctx or 8192
    notes: list[str] = []
    try:
        wanted = [load_catalog().get(args.model_id).id] if args.model_id else []
    except CatalogError as exc:
        print(f"reflectchat: {exc}", file=sys.stderr)
        return 1
    if wanted and os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        notes.append("Offline (HF_HUB_OFFLINE): sizes of quants not on disk are the catalog's")
    rows = [r for r in fit_rows(hw, n_ctx, from_hub=wanted, notes=notes)
            if not wanted or r.model.id in wanted]
    for note in notes:
        print(note, file=sys.stderr)
    if args.json:
        print(json.dumps([{
            "model": r.model.id, "quant": r.quant.name, "size_bytes": r.quant.size,
            "verdict": r.plan.verdict.value, "n_gpu_layers": r.plan.n_gpu_layers,
            "layers": r.plan.n_layer, "gpu_bytes": r.plan.gpu_bytes,
            "ram_bytes": r.plan.ram_bytes, "sizes_from": r.source,
            "downloaded": r.downloaded, "recommended": r.recommended,
        } for r in rows], indent=2))
        return 0
    gpus = ", ".join(f"{g.name} {g.free_bytes / GIB:.0f} GiB free" for g in hw.gpus) or "no GPU"
    print(f"This machine: {gpus}; RAM {hw.ram_available_bytes / GIB:.0f} GiB available; "
          f"context {n_ctx:,} tokens")
    table = Table("model", "quant", "size", "fit", "GPU layers", "GPU + RAM", "on disk",
                  box=None, header_style="bold")
    for r in rows:
        style = "bold green" if r.recommended else ("dim" if r.plan.verdict.value ==
                                                    "does not fit" else "")
        mark = " ★" if r.recommended else ""
        table.add_row(r.model.id, r.quant.name + mark, f"{r.quant.size / 1e9:.1f} GB",
                      r.plan.label, f"{r.plan.n_gpu_layers}/{r.plan.n_layer + 1}",
                      f"{r.plan.gpu_bytes / GIB:.0f} + {r.plan.ram_bytes / GIB:.0f} GiB"
                      + (" (est.)" if r.source == "catalog" else ""),
                      "yes" if r.downloaded else "no", style=style)
    Console(highlight=False).print(table)
    print("★ recommended for this machine. GPU layers count the output layer as llama.cpp "
          "does. (est.): sizes estimated from the catalog; `reflectchat models MODEL` reads "
          "exact sizes from the hub's file headers.")
    return 0
