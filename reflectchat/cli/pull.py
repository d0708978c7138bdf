"""`reflectchat pull MODEL [--quant Q|auto]`."""

from __future__ import annotations

import argparse
import sys

from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TimeRemainingColumn,
)
from rich.text import Text

from reflectchat.cli.console import CommandConsole
from reflectchat.cli.output import EXIT_CANCELLED, EXIT_OK, fail
from reflectchat.engine.base import DEFAULT_CTX
from reflectchat.models.catalog import CatalogError, CatalogModel, Quant, load_catalog
from reflectchat.models.pull import PullError, quant_download
from reflectchat.sizes import size_text
from reflectchat.untrusted import visible


class _Transfer(ProgressColumn):
    """Bytes done of the total, and the speed, in the same units as every other view."""

    def render(self, task: Task) -> Text:
        speed = f", {size_text(task.speed)}/s" if task.speed else ""
        return Text(f"{size_text(task.completed)} of {size_text(task.total or 0)}{speed}",
                    style="progress.download")


def _quant(entry: CatalogModel, wanted: str) -> Quant:
    if wanted != "auto":
        return entry.quant(wanted)
    from reflectchat.models.hardware import detect
    from reflectchat.models.quant_plans import fit_rows

    rows = [r for r in fit_rows(detect(), DEFAULT_CTX) if r.group_key == entry.id]
    best = next((r for r in rows if r.recommended and r.quant), None)
    if best is None or best.quant is None:
        why = "fits this machine" if not any(r.runs for r in rows) else \
            "fits this machine without quality loss"
        raise CatalogError(f"No quant of {entry.id} {why} (see `reflectchat models`); name "
                           "one with --quant to download it anyway")
    print(f"Chose {best.quant.name} for this machine: {best.plan.label}; {best.reason}",
          file=sys.stderr)
    return best.quant


def run(args: argparse.Namespace) -> int:
    err = CommandConsole(stderr=True, highlight=False, markup=False)  # paths are text, not markup
    try:
        entry = load_catalog().get(args.model)
        quant = _quant(entry, args.quant)
        job = quant_download(entry, quant)
        if job.complete:
            paths = job.run(lambda n: None)
            err.print(f"{entry.id} {quant.name} is already downloaded: {visible(str(paths[0]))}")
            return EXIT_OK
        done = job.total - job.needed()
        if done:
            err.print(f"Continuing from {size_text(done)} already on disk")
        with Progress("[progress.description]{task.description}", BarColumn(), _Transfer(),
                      TimeRemainingColumn(), console=err, transient=False) as progress:
            task = progress.add_task(f"{entry.id} {quant.name}", total=job.total,
                                     completed=done)
            paths = job.run(lambda n: progress.advance(task, n))
    except (CatalogError, PullError) as exc:
        return fail(exc)
    except KeyboardInterrupt:
        fail("interrupted; the bytes so far are kept: run the same command again to continue")
        return EXIT_CANCELLED
    note = f" ({job.retries} interrupted transfer(s) resumed)" if job.retries else ""
    err.print(f"Downloaded and verified (sha256){note}: {visible(str(paths[0]))}")
    err.print(f"Run it with: reflectchat --model {entry.id} --quant {quant.name}")
    return EXIT_OK
