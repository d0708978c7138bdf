"""The `models` table, grouped by model so it reads at 80 columns: one header line per model
(id or local name, parameters, repository or source), its quants below with one line each, and
the reason for the ★ under them. Names are never cut: a file name too long for its column gets
its own line above its figures."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

from reflectchat.models.advice import Row
from reflectchat.models.fit import Verdict
from reflectchat.models.quality import params_text
from reflectchat.models.speed import speed_text
from reflectchat.sizes import GIB, size_text
from reflectchat.untrusted import visible

WIDTH = 80
QUANT_COLUMN = 8
HEADER = f"  {'quant':<{QUANT_COLUMN}} {'GiB':>5} {'bpw':>4} {'fit':<13} {'tok/s':>6} " \
         f"{'prompt':>6} {'GPU+RAM':>9} note"
LEGEND = ("tok/s: decoding speed; ≤ marks the bound memory bandwidth sets (an estimate), a plain "
          "figure was measured here. prompt: prompt tokens/s, from prompts measured here. "
          "GPU+RAM: GiB each needs (1 GiB spare each). bpw: bits per weight; quality loss: "
          "below the floor for the model's size (docs/model-advice.md). fit: GPU layers count "
          "the output layer as llama.cpp does.")


def memory_text(row: Row) -> str:
    if row.plan.verdict is Verdict.NO_FIT:
        return f"{row.plan.ram_bytes / GIB:.1f}"
    ram = f"{row.plan.ram_bytes / GIB:.1f}"
    return f"{row.plan.gpu_bytes / GIB:.1f}+{ram}" if row.plan.gpu_bytes else ram


def notes(row: Row) -> str:
    said = []
    if row.downloaded:
        said.append("on disk")
    if row.memory_measured or row.speed.decode_measured:
        said.append("measured")
    if row.quality_loss:
        said.append("quality loss")
    return ", ".join(said)


def group_header(rows: Sequence[Row]) -> str:
    first = rows[0]
    params = params_text(first.shape.params) if first.shape.params else "?"
    if first.model is not None:
        return f"{first.model.id}  {params}  {first.model.repo}"
    return f"{visible(first.group)}  {params}"


def row_lines(row: Row) -> list[str]:
    mark = "★ " if row.recommended else "  "
    name = visible(row.quant_name)
    bpw = f"{row.bpw:.1f}" if row.bpw else "-"
    figures = (f"{row.size / GIB:>5.1f} {bpw:>4} {row.plan.short_label:<13} "
               f"{speed_text(row.speed.decode_tps, row.speed.decode_measured):>6} "
               f"{speed_text(row.speed.prompt_tps, row.speed.prompt_measured):>6} "
               f"{memory_text(row):>9} {notes(row)}").rstrip()
    if len(name) <= QUANT_COLUMN:
        return [f"{mark}{name:<{QUANT_COLUMN}} {figures}"]
    return [f"{mark}{name}", f"  {'':<{QUANT_COLUMN}} {figures}"]


def reason_lines(rows: Sequence[Row]) -> list[str]:
    best = next((r for r in rows if r.recommended), None)
    if best is not None:
        text = f"★ {visible(best.quant_name)}: {best.reason}"
    elif any(r.runs for r in rows):
        text = "no ★: every quant that runs here is below the quality floor"
    else:
        text = "no ★: nothing of this model fits this machine"
    return textwrap.wrap(text, WIDTH, initial_indent="  ", subsequent_indent="    ")


def grouped(rows: Sequence[Row]) -> list[tuple[str, list[Row]]]:
    groups: dict[str, list[Row]] = {}
    for row in rows:
        groups.setdefault(row.group_key, []).append(row)
    return [(key, members) for key, members in groups.items()]


def pick_lines(best: Row | None, rows: Sequence[Row], machine: str = "this machine") \
        -> list[str]:
    if best is None and not any(r.runs for r in rows):
        smallest = min(rows, key=lambda r: r.plan.ram_bytes + r.plan.gpu_bytes)
        text = (f"Nothing here fits {machine}'s memory: the smallest, "
                f"{visible(smallest.group)} {visible(smallest.quant_name)}, needs "
                f"{size_text(smallest.plan.ram_bytes)} of RAM with nothing on a GPU.")
        return textwrap.wrap(text, WIDTH, subsequent_indent="  ")
    if best is None:
        return [f"Nothing here runs on {machine} without quality loss."]
    text = (f"Best for {machine}: {visible(best.group)} {visible(best.quant_name)} "
            f"({best.reason})")
    return textwrap.wrap(text, WIDTH, subsequent_indent="  ")
