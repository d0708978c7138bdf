"""`reflectchat models [MODEL]`: every catalog quant, how it fits this machine, how fast it will
run and whether it keeps quality; `--local`: the GGUFs other tools downloaded, used in place;
`reflectchat models FILE.gguf`: one file's plan; `--endpoint X`: what a server offers instead."""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
from pathlib import Path

from reflectchat.cli.args import tensor_split
from reflectchat.cli.console import CommandConsole
from reflectchat.cli.model_table import (
    HEADER,
    LEGEND,
    group_header,
    grouped,
    pick_lines,
    reason_lines,
    row_lines,
)
from reflectchat.cli.output import EXIT_OK, fail
from reflectchat.config import ConfigFile
from reflectchat.engine.base import DEFAULT_CTX
from reflectchat.engine.endpoints import resolve_endpoint
from reflectchat.engine.errors import EngineError
from reflectchat.models.advice import Row, best_pick
from reflectchat.models.catalog import CatalogError, load_catalog
from reflectchat.models.draft_plan import DraftPlan, catalog_draft, plan_draft
from reflectchat.models.fit import Verdict
from reflectchat.models.hardware import Hardware, detect
from reflectchat.models.planned_machine import planned_for
from reflectchat.models.quality import params_text
from reflectchat.models.quant_plans import Planner, fit_rows, local_rows
from reflectchat.sizes import size_text
from reflectchat.untrusted import visible


def run(args: argparse.Namespace) -> int:
    if args.endpoint:
        return _server_models(args)
    if args.model_id and (args.model_id.endswith(".gguf") or Path(args.model_id).is_file()):
        return _file_plan(args, Path(args.model_id).expanduser())
    return _catalog_models(args)


def _file_plan(args: argparse.Namespace, path: Path) -> int:
    """The plan of one GGUF file (a split model: its first shard), from its header."""
    from reflectchat.engine.gguf_file import check_before_load, mtp_layers, shard_paths
    from reflectchat.engine.gguf_header import HeaderError
    from reflectchat.models.fit import shape_from_gguf

    n_ctx = args.ctx or DEFAULT_CTX
    try:
        check_before_load(path)
        shards = shard_paths(path)
        shape = shape_from_gguf(shards)
        split = tensor_split(args)
    except (EngineError, HeaderError, OSError, ValueError) as exc:
        return fail(f"cannot plan {path}: {exc}")
    try:
        hw, planner = _planner(args, n_ctx, split)
    except EngineError as exc:
        return fail(exc)
    size = sum(p.stat().st_size for p in shards)
    row = planner.row(shape, path.name, size, group=path.name,
                                 group_key=str(path), quant_name=path.name, source="file",
                                 downloaded=True, path=path)
    try:
        draft = _draft(args, row, n_ctx)
    except (EngineError, HeaderError, OSError, ValueError) as exc:
        return fail(f"cannot plan the draft model {args.draft_model}: {exc}")
    heads = mtp_layers(shards[0])
    if args.json:
        print(json.dumps({"file": str(path), "n_ctx": n_ctx, **_row_json(row),
                          "mtp_layers": heads,
                          "draft": _draft_json(draft) if draft else None}, indent=2))
        return EXIT_OK
    chosen = row.plan
    print(_machine_line(hw, n_ctx, _named(args)))
    print(visible(path.name) + f"  {size_text(size)}  {shape.n_layer} layers, "
          f"{params_text(shape.params)} parameters, {row.bpw or 0:.2f} bits per weight"
          + ("  (quality loss)" if row.quality_loss else ""))
    layers = f"; GPU layers {chosen.n_gpu_layers}/{chosen.n_layer + 1}" if hw.gpus else ""
    print(f"  fit: {chosen.label}{layers}")
    if shape.experts:
        print(f"  a mixture of experts: {shape.experts_used} of {shape.experts} experts a token"
              + (f"; load with --n-cpu-moe {chosen.experts_in_ram} (the default here)"
                 if chosen.experts_in_ram else ""))
    for card in chosen.cards:
        print(f"    {visible(card.gpu.name)}: {card.layers} layers"
              + (" and the output layer" if card.output else "")
              + f", {size_text(card.bytes)} of {size_text(card.gpu.free_bytes)} free")
    on_gpu = f"{size_text(chosen.gpu_bytes)} on the GPU and " if chosen.gpu_bytes else ""
    basis = "measured at this load's settings" if row.memory_measured else \
        f"KV cache {size_text(chosen.kv_bytes)}, compute {size_text(chosen.compute_bytes)}"
    print(f"  needs {on_gpu}{size_text(chosen.ram_bytes)} of RAM ({basis}; 1 GiB to spare)")
    if chosen.verdict is not Verdict.NO_FIT and (short := short_now(hw, chosen.ram_bytes)):
        print(textwrap.fill(short, 80, initial_indent="  ", subsequent_indent="  "))
    print(f"  speed: {_speed_sentence(row)}")
    if draft is not None:
        for line in _draft_lines(args.draft_model, draft, args.draft_max, chosen.ram_bytes):
            print(textwrap.fill(line, 80, initial_indent="  ", subsequent_indent="    "))
    if heads:
        print(textwrap.fill(
            f"  multi-token prediction: the file carries {heads} MTP layer"
            f"{'s' if heads > 1 else ''} for drafting its own tokens; reflectchat cannot use "
            "them yet (use --spec ngram, on by default, or a --draft-model)", 80,
            subsequent_indent="    "))
    if chosen.capped_at is not None:
        print(f"  a load with more GPU layers ran out of memory here before: planned at most "
              f"{chosen.capped_at}")
    return EXIT_OK


def _draft(args: argparse.Namespace, row: Row, n_ctx: int) -> DraftPlan | None:
    """The draft model's plan beside the model's (--draft-model)."""
    if not args.draft_model:
        return None
    return plan_draft(row.plan, row.shape, Path(args.draft_model).expanduser(), n_ctx,
                      args.draft_max)


def _draft_lines(name: str, draft: DraftPlan, drafted: int, ram: int) -> list[str]:
    where = f"on the {visible(draft.gpu)} beside the model" if draft.gpu else \
        f"in RAM (the model is not wholly on a GPU, or no card has room left for it; " \
        f"{size_text(ram + draft.bytes)} of RAM with the model's)"
    gains = ", ".join(f"{up:.1f}x at {a:.0%}" for a, up in draft.speedups)
    return [f"draft: {visible(Path(name).name)}, {size_text(draft.bytes)} {where} (weights "
            f"{size_text(draft.weights)}, KV cache {size_text(draft.kv)}, compute "
            f"{size_text(draft.compute)})",
            f"expected with {drafted} drafted tokens a step: {gains} of its tokens kept (a "
            f"draft token reads {draft.cost:.1%} of what a model token reads; the status bar "
            "shows the real figure)"]


def _draft_json(draft: DraftPlan) -> dict[str, object]:
    return {"weights_bytes": draft.weights, "kv_bytes": draft.kv,
            "compute_bytes": draft.compute, "gpu": draft.gpu, "cost": round(draft.cost, 4),
            "speedups": {f"{a:.2f}": round(up, 3) for a, up in draft.speedups}}


def _speed_sentence(row: Row) -> str:
    s = row.speed
    if s.decode_tps is None:
        return "unknown (no bandwidth figure for this device)"
    decode = (f"{s.decode_tps:.1f} tokens/s measured here" if s.decode_measured else
              f"at most {s.decode_tps:.1f} tokens/s (memory bandwidth bound)")
    if s.prompt_tps is None:
        return decode
    how = "measured" if s.prompt_measured else "estimated from prompts measured here"
    return f"{decode}; prompts {s.prompt_tps:,.0f} tokens/s ({how})"


def _row_json(r: Row) -> dict[str, object]:
    return {
        "model": r.model.id if r.model else r.group, "quant": r.quant_name,
        "path": str(r.path) if r.path else None, "size_bytes": r.size,
        "params": r.shape.params, "bpw": round(r.bpw, 3) if r.bpw else None,
        "quality_loss": r.quality_loss, "verdict": r.plan.verdict.value,
        "n_gpu_layers": r.plan.n_gpu_layers, "layers": r.plan.n_layer,
        "experts_in_ram_layers": r.plan.experts_in_ram, "placement": r.plan.label,
        "gpu_bytes": r.plan.gpu_bytes, "ram_bytes": r.plan.ram_bytes,
        "kv_bytes": r.plan.kv_bytes, "compute_bytes": r.plan.compute_bytes,
        "gpus": [{"name": c.gpu.name, "layers": c.layers, "output_layer": c.output,
                  "bytes": c.bytes} for c in r.plan.cards],
        "memory": "measured" if r.memory_measured else "estimated",
        "decode_tokens_per_s": r.speed.decode_tps,
        "decode": "measured" if r.speed.decode_measured else "estimated",
        "prompt_tokens_per_s": r.speed.prompt_tps,
        "prompt": "measured" if r.speed.prompt_measured else "estimated",
        "capped_at_gpu_layers": r.plan.capped_at, "sizes_from": r.source,
        "downloaded": r.downloaded, "recommended": r.recommended, "reason": r.reason,
    }


def _named(args: argparse.Namespace) -> bool:
    """The user named the machine to plan for (--gpu, --ram)."""
    return bool(args.gpu) or args.ram is not None


def _planner(args: argparse.Namespace, n_ctx: int,
             split: tuple[float, ...] | None) -> tuple[Hardware, Planner]:
    """This machine, or the one --gpu and --ram describe (with this machine's RAM speed)."""
    here = detect()
    if not _named(args):
        return here, Planner(here, n_ctx, tensor_split=split)
    hw = planned_for(here, args.gpu or [], args.ram)
    speed = Planner(here, n_ctx).ram_bandwidth
    return hw, Planner(hw, n_ctx, tensor_split=split, ram_bandwidth=speed)


def _machine_line(hw: Hardware, n_ctx: int, named: bool) -> str:
    free = "" if named else " free"
    gpus = ", ".join(f"{visible(g.name)}{'' if named else ' ' + size_text(g.free_bytes)}{free}"
                     for g in hw.gpus) or "no GPU"
    where = "Planned for" if named else "This machine"
    after = "; RAM as fast as this machine's" if named else ""
    return "\n".join(textwrap.wrap(
        f"{where}: {gpus}; {ram_text(hw, named)}; context {n_ctx:,} tokens{after}", 80,
        subsequent_indent="  ", break_on_hyphens=False))


def ram_text(hw: Hardware, named: bool = False) -> str:
    """The RAM plans use, and how it was reckoned."""
    if not hw.ram_total_bytes:
        return f"RAM {size_text(hw.ram_plan_bytes)} free"
    now = "" if named else f"; {size_text(hw.ram_available_bytes)} free now"
    return (f"RAM {size_text(hw.ram_plan_bytes)} for models ({size_text(hw.ram_total_bytes)} "
            f"less {size_text(hw.ram_reserve_bytes)} for the system{now})")


def short_now(hw: Hardware, needed: int) -> str | None:
    """A warning when the RAM free now is less than a plan needs."""
    if not hw.ram_total_bytes or needed <= hw.ram_available_bytes:
        return None
    return (f"Free RAM now ({size_text(hw.ram_available_bytes)}) is less than this needs "
            f"({size_text(needed)}): close other programs before loading, or the model's "
            "weights will be read from disk again and again.")


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
    n_ctx = args.ctx or DEFAULT_CTX
    notes: list[str] = []
    try:
        hw, planner = _planner(args, n_ctx, tensor_split(args))
    except EngineError as exc:
        return fail(exc)
    if args.local:
        rows = local_rows(hw, n_ctx, notes=notes, planner=planner)
        if not rows and not args.json:
            print("No GGUF files found from other tools (Hugging Face cache, llama.cpp cache, "
                  "Ollama, LM Studio).", file=sys.stderr)
    else:
        try:
            wanted = [load_catalog().get(args.model_id).id] if args.model_id else []
        except CatalogError as exc:
            return fail(exc)
        if wanted and os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
            notes.append("Offline (HF_HUB_OFFLINE): sizes of quants not on disk are the "
                         "catalog's")
        rows = [r for r in fit_rows(hw, n_ctx, from_hub=wanted, notes=notes, planner=planner)
                if not wanted or r.group_key in wanted]
    for note in notes:
        print(visible(note), file=sys.stderr)
    best = best_pick(rows)
    if args.json:
        print(json.dumps([{**_row_json(r), "best": r is best} for r in rows], indent=2))
        return EXIT_OK
    console = CommandConsole(highlight=False, markup=False, emoji=False)
    print(_machine_line(hw, n_ctx, _named(args)))
    for line in pick_lines(best, rows, "that machine" if _named(args) else "this machine") \
            if rows else []:
        console.print(line, style="bold", soft_wrap=True)
    if best is not None and (short := short_now(hw, best.plan.ram_bytes)):
        print(textwrap.fill(short, 80))
    for _key, members in grouped(rows):
        print()
        console.print(group_header(members), style="bold", soft_wrap=True)
        print(HEADER)
        for r in members:
            style = "bold green" if r.recommended else ("dim" if not r.runs else "")
            for line in row_lines(r):
                console.print(line, style=style, soft_wrap=True)
        for line in reason_lines(members):
            print(line)
        if drafting := catalog_draft(members[0].model):
            print(textwrap.fill(drafting, 80, initial_indent="  ", subsequent_indent="    "))
    if rows:
        print()
        print("\n".join(textwrap.wrap(LEGEND + (
            "" if args.local or args.model_id else " Sizes of quants not on disk are "
            "estimated from the catalog; `reflectchat models MODEL` reads them from the "
            "hub's file headers."), 80)))
    return EXIT_OK
