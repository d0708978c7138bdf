"""`reflectchat models`: every catalog model and quant, and how each fits this machine."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from reflectchat.catalog import CatalogModel, Quant, load_catalog
from reflectchat.fit import GIB, Plan, plan, recommend, shape_from_catalog, shape_from_gguf
from reflectchat.hardware import Hardware, detect
from reflectchat.model_choice import downloaded_files


@dataclass
class Row:
    model: CatalogModel
    quant: Quant
    plan: Plan
    exact: bool  # sizes from the downloaded file's header, not estimated
    downloaded: bool
    recommended: bool = False


def fit_rows(hw: Hardware, n_ctx: int, cache_type: str = "f16") -> list[Row]:
    rows = []
    for entry in load_catalog().models:
        plans = []
        for quant in entry.quants:
            files = downloaded_files(entry, quant)
            shape = shape_from_gguf(files) if files else shape_from_catalog(entry.arch,
                                                                            quant.size)
            quant_plan = plan(shape, hw, n_ctx, cache_type, cache_type)
            rows.append(Row(entry, quant, quant_plan, shape.exact, files is not None))
            plans.append((quant.size, quant_plan))
        best = recommend(plans)
        if best is not None:
            rows[len(rows) - len(plans) + best].recommended = True
    return rows


def run_models_table(args: argparse.Namespace) -> int:
    hw = detect()
    n_ctx = args.ctx or 8192
    rows = fit_rows(hw, n_ctx)
    if args.json:
        print(json.dumps([{
            "model": r.model.id, "quant": r.quant.name, "size_bytes": r.quant.size,
            "verdict": r.plan.verdict.value, "n_gpu_layers": r.plan.n_gpu_layers,
            "layers": r.plan.n_layer, "gpu_bytes": r.plan.gpu_bytes,
            "ram_bytes": r.plan.ram_bytes, "estimated_from": "header" if r.exact else "catalog",
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
                      + ("" if r.exact else " (est.)"),
                      "yes" if r.downloaded else "no", style=style)
    Console(highlight=False).print(table)
    print("★ recommended for this machine. GPU layers count the output layer as llama.cpp "
          "does; (est.) sizes come from the catalog until the file is downloaded.")
    return 0
