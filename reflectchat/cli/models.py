"""`reflectchat models [MODEL]`: every catalog quant and how it fits this machine;
`reflectchat models --endpoint X`: what a server offers instead."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from reflectchat.cli.output import EXIT_OK, fail
from reflectchat.config import ConfigFile
from reflectchat.engine.base import DEFAULT_CTX
from reflectchat.engine.endpoints import resolve_endpoint
from reflectchat.engine.errors import EngineError
from reflectchat.models.catalog import CatalogError, load_catalog
from reflectchat.models.fit import plan
from reflectchat.models.hardware import Hardware, detect
from reflectchat.models.quant_plans import fit_rows
from reflectchat.sizes import size_text
from reflectchat.untrusted import visible


def run(args: argparse.Namespace) -> int:
    if args.endpoint:
        return _server_models(args)
    if args.model_id and (args.model_id.endswith(".gguf") or Path(args.model_id).is_file()):
        return _file_plan(args, Path(args.model_id).expanduser())
    return _catalog_models(args)


def _file_plan(args: argparse.Namespace, path: Path) -> int:
    """The memory plan of one GGUF file (a split model: its first shard), from its header."""
    from reflectchat.engine.gguf_file import check_before_load, shard_paths
    from reflectchat.engine.gguf_header import HeaderError
    from reflectchat.models.fit import shape_from_gguf

    n_ctx = args.ctx or DEFAULT_CTX
    try:
        check_before_load(path)
        shards = shard_paths(path)
        shape = shape_from_gguf(shards)
    except (EngineError, HeaderError, OSError, ValueError) as exc:
        return fail(f"cannot plan {path}: {exc}")
    hw = detect()
    chosen = plan(shape, hw, n_ctx)
    size = sum(p.stat().st_size for p in shards)
    if args.json:
        print(json.dumps({"file": str(path), "size_bytes": size,
                          "verdict": chosen.verdict.value, "n_gpu_layers": chosen.n_gpu_layers,
                          "layers": chosen.n_layer, "gpu_bytes": chosen.gpu_bytes,
                          "ram_bytes": chosen.ram_bytes, "kv_bytes": chosen.kv_bytes,
                          "compute_bytes": chosen.compute_bytes, "n_ctx": n_ctx}, indent=2))
        return EXIT_OK
    print(_machine_line(hw, n_ctx))
    print(visible(path.name) + f"  {size_text(size)}  {shape.n_layer} layers")
    on_gpu = f"{size_text(chosen.gpu_bytes)} on the GPU and " if chosen.gpu_bytes else ""
    layers = f"; GPU layers {chosen.n_gpu_layers}/{chosen.n_layer + 1}" if hw.gpus else ""
    print(f"  fit: {chosen.label}{layers}")
    print(f"  needs {on_gpu}{size_text(chosen.ram_bytes)} of RAM (KV cache "
          f"{size_text(chosen.kv_bytes)}, compute {size_text(chosen.compute_bytes)}; "
          "1 GiB to spare)")
    return EXIT_OK


def _machine_line(hw: Hardware, n_ctx: int) -> str:
    gpus = ", ".join(f"{visible(g.name)} {size_text(g.free_bytes)} free" for g in hw.gpus) \
        or "no GPU"
    return (f"This machine: {gpus}; RAM {size_text(hw.ram_available_bytes)} available; "
            f"context {n_ctx:,} tokens")


def _server_models(args: argparse.Namespace) -> int:
    try:
        endpoint = resolve_endpoint(args.endpoint, ConfigFile().endpoint_tables(),
                                    args.api_key_env)
        from reflectchat.engine.remote import list_models

        models = list_models(endpoint)
    except EngineError as exc:
        return fail(exc)
    if args.json:
        print(json.dumps(models, ensure_ascii=False, indent=2))
    elif not models:
        print(f"{endpoint.host} offers no models", file=sys.stderr)
    for model in [] if args.json else models:
        extra = f"  (context {model['max_model_len']:,})" if isinstance(
            model.get("max_model_len"), int) else ""
        print(visible(str(model.get("id"))) + extra)
    return EXIT_OK


def _catalog_models(args: argparse.Namespace) -> int:
    hw = detect()
    n_ctx = args.ctx or DEFAULT_CTX
    notes: list[str] = []
    try:
        wanted = [load_catalog().get(args.model_id).id] if args.model_id else []
    except CatalogError as exc:
        return fail(exc)
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
        return EXIT_OK
    print(_machine_line(hw, n_ctx))
    table = Table("model", "quant", "size", "fit", "GPU layers", "GPU + RAM", "on disk",
                  box=None, header_style="bold")
    for r in rows:
        style = "bold green" if r.recommended else ("dim" if r.plan.verdict.value ==
                                                    "does not fit" else "")
        mark = " ★" if r.recommended else ""
        table.add_row(r.model.id, r.quant.name + mark, size_text(r.quant.size),
                      r.plan.label, f"{r.plan.n_gpu_layers}/{r.plan.n_layer + 1}",
                      f"{size_text(r.plan.gpu_bytes)} + {size_text(r.plan.ram_bytes)}"
                      + (" (est.)" if r.source == "catalog" else ""),
                      "yes" if r.downloaded else "no", style=style)
    Console(highlight=False).print(table)
    print("★ recommended for this machine. GPU layers count the output layer as llama.cpp "
          "does. (est.): sizes estimated from the catalog; `reflectchat models MODEL` reads "
          "exact sizes from the hub's file headers. Sizes in GiB (1024³ bytes).")
    return EXIT_OK
