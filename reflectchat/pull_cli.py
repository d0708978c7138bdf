"""`reflectchat pull MODEL [--quant Q|auto]`."""

from __future__ import annotations

import argparse
import sys

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from reflectchat.catalog import CatalogError, CatalogModel, Quant, load_catalog
from reflectchat.pull import Download, PullError, remote_files


def _quant(entry: CatalogModel, wanted: str) -> Quant:
    if wanted != "auto":
        return entry.quant(wanted)
    from reflectchat.hardware import detect
    from reflectchat.models_table import fit_rows

    rows = [r for r in fit_rows(detect(), 8192) if r.model.id == entry.id]
    best = next((r for r in rows if r.recommended), None)
    if best is None:
        raise CatalogError(f"No quant of {entry.id} fits this machine (see `reflectchat "
                           "models`); name one with --quant to download it anyway")
    print(f"Chose {best.quant.name} for this machine: {best.plan.label}", file=sys.stderr)
    return best.quant


def run_pull(args: argparse.Namespace) -> int:
    err = Console(stderr=True, highlight=False)
    try:
        entry = load_catalog().get(args.model)
        quant = _quant(entry, args.quant)
        job = Download(entry.repo, remote_files(entry.repo, list(quant.files)))
        if job.needed() == 0 and all(job.cache.blob(f.sha256).exists() for f in job.files):
            paths = job.run(lambda n: None)
            err.print(f"{entry.id} {quant.name} is already downloaded: {paths[0]}")
            return 0
        job.check_space()
        done = job.total - job.needed()
        if done:
            err.print(f"Continuing from {done / 1e9:,.2f} GB already on disk")
        with Progress("[progress.description]{task.description}", BarColumn(),
                      DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn(),
                      console=err, transient=False) as progress:
            task = progress.add_task(f"{entry.id} {quant.name}", total=job.total,
                                     completed=done)
            paths = job.run(lambda n: progress.advance(task, n))
    except (CatalogError, PullError) as exc:
        print(f"reflectchat: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("reflectchat: interrupted; the bytes so far are kept: run the same command "
              "again to continue", file=sys.stderr)
        return 130
    note = f" ({job.retries} interrupted transfer(s) resumed)" if job.retries else ""
    err.print(f"Downloaded and verified (sha256){note}: {paths[0]}")
    err.print(f"Run it with: reflectchat --model {entry.id} --quant {quant.name}")
    return 0
