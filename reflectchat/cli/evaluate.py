"""`reflectchat eval`: check a model's reasoning on this machine. A benchmark (GSM8K, MATH-500)
or a user's file, a fixed sample of it, answered under one or more reasoning settings through
the same path as `ask`; a table of accuracy with intervals, the paired differences and what the
reflections fixed and broke. Results are kept per item as they come: Ctrl+C stops cleanly, and
the same command resumes."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import threading
import time
from dataclasses import asdict, replace
from pathlib import Path

from reflectchat.cli.ask import ctrl_c_stops
from reflectchat.cli.eval_models import contenders, name_them
from reflectchat.cli.output import EXIT_CANCELLED, EXIT_FAILED, EXIT_OK, fail
from reflectchat.engine.base import Backend
from reflectchat.engine.errors import EngineError
from reflectchat.eval.checking import Kind
from reflectchat.eval.items import (
    BENCHMARKS,
    EvalError,
    Item,
    benchmark_items,
    digest,
    fetch,
    file_items,
    needed,
)
from reflectchat.eval.lineup import Contender, Lineup
from reflectchat.eval.report import as_json, markdown, rows
from reflectchat.eval.results import Result, ResultsFile, RunInfo, results_file
from reflectchat.eval.runner import INSTRUCTION, Job, Recorder, jobs, run_jobs
from reflectchat.eval.settings import Setting, parse_settings
from reflectchat.models.catalog import CatalogError
from reflectchat.models.choice import ModelChoice
from reflectchat.store.recorder import SessionRecorder
from reflectchat.store.records import SessionMeta
from reflectchat.store.session_store import SessionStore, StoreError
from reflectchat.untrusted import visible


def _items(args: argparse.Namespace) -> tuple[str, Kind, list[Item]]:
    """The title, the way answers are checked, and the sampled items."""
    if args.file is not None:
        title, kind = Path(args.file).name, Kind(args.check)
    else:
        bench = BENCHMARKS[args.bench]
        title, kind = bench.title, bench.kind
        if bench.file.endswith(".parquet"):
            needed("pyarrow", f"reading {bench.title}")
    if kind is Kind.MATH:
        needed("math_verify", "checking answers as mathematics")
    items = file_items(Path(args.file), args.n, args.seed) if args.file is not None else \
        benchmark_items(bench, fetch(bench), args.n, args.seed)
    if len({i.id for i in items}) != len(items):
        raise EvalError(f"{title}: two items have the same id")
    return title, kind, items


def run_key(title: str, items: list[Item], choice: ModelChoice) -> str:
    """Results are resumed only for the same items, model and sampling; settings are kept per
    result, so adding one later reuses the rest."""
    s = choice.sampling
    same = {"title": title, "items": digest(items), "model": choice.label,
            "quant": choice.quant, "system": choice.system_prompt, "temperature": s.temperature,
            "top_p": s.top_p, "top_k": s.top_k, "min_p": s.min_p, "max_tokens": s.max_tokens,
            "instruction": INSTRUCTION}
    return hashlib.sha256(json.dumps(same, sort_keys=True).encode()).hexdigest()[:16]


def _sessions(args: argparse.Namespace) -> Recorder | None:
    """With --save-sessions, each answer is also a session in the history."""
    if not args.save_sessions:
        return None
    try:
        store = SessionStore.open()
    except StoreError as exc:
        print(f"reflectchat: {visible(str(exc))}; answers are not saved as sessions",
              file=sys.stderr)
        return None

    def recorder(job: Job, choice: ModelChoice, engine: Backend) -> SessionRecorder:
        return SessionRecorder(store, SessionMeta(
            choice.model_id, choice.quant, choice.system_prompt,
            job.setting.applied(choice.sampling), engine.gpu_layers, engine.n_ctx))
    return recorder


def _prepare(args: argparse.Namespace) -> tuple[str, Kind, list[Item], list[Setting], Lineup]:
    """The items, settings and models; every server connected and its model named, so that
    each model's results file is known."""
    if args.report:
        _check_report(Path(args.report))
    title, kind, items = _items(args)
    settings = parse_settings(args.settings)
    lineup = Lineup(contenders(args))
    for contender in lineup.contenders:
        if not contender.local:
            contender.open()
    name_them(lineup.contenders)
    keys = [run_key(title, items, c.choice) for c in lineup.contenders]
    if len(set(keys)) != len(keys):
        raise EvalError("--vs names a model that is already compared")
    for contender, key in zip(lineup.contenders, keys, strict=True):
        contender.store = ResultsFile(results_file(key))
        if contender.store.path.exists() and not contender.store.path.is_file():
            raise EvalError(f"{contender.store.path} is not a regular file (a FIFO, a device or "
                            "a folder?): move it aside and run again")
        contender.store.describe(RunInfo(title, contender.choice.label,
                                         [s.name for s in settings], len(items), kind.value,
                                         time.time()))
    return title, kind, items, settings, lineup


def run(args: argparse.Namespace) -> int:
    lineup = None
    try:
        title, kind, items, settings, lineup = _prepare(args)
        pending, kept = _pending(lineup, items, settings)
        if pending:  # a model that does not load says so before anything is answered
            lineup.engine_for(pending[0].model)
    except (EvalError, EngineError, CatalogError) as exc:
        if lineup is not None:
            lineup.close()
        return fail(exc)
    several = len(lineup.contenders) > 1
    table_names = _Names(lineup, settings)
    wanted = len(lineup.contenders) * len(items) * len(settings)
    models = ", ".join(visible(c.name) for c in lineup.contenders)
    print(f"reflectchat: {visible(title)}, {len(items)} items x {len(settings)} setting"
          f"{'s' * (len(settings) != 1)} on {models}; results in "
          f"{_store(lineup.contenders[0]).path.parent}"
          + (f" ({len(kept)} kept from before)" if kept else ""), file=sys.stderr)
    if several and lineup.turn > 1:
        print(f"reflectchat: one model run here is loaded at a time: they take turns every "
              f"{lineup.turn} items", file=sys.stderr)
    results = [table_names.named(m, r) for m, r in kept]
    cancel = threading.Event()
    try:
        with ctrl_c_stops(cancel), _Progress(wanted, table_names.all, results) as progress:
            for job, result in run_jobs(lineup.engine_for, kind, pending, args.seed, cancel,
                                        args.parallel, _sessions(args)):
                _store(lineup.contenders[job.model]).add(result)
                results.append(table_names.named(job.model, result))
                progress.advance()
    except EngineError as exc:
        print(f"reflectchat: {visible(str(exc))}", file=sys.stderr)
        print("reflectchat: the answers so far are kept; run the same command to go on "
              "from there.", file=sys.stderr)
        return EXIT_FAILED
    finally:
        lineup.close()
    heading = f"{title}: " + (f"{len(lineup.contenders)} models" if several
                              else lineup.contenders[0].choice.label)
    table = rows(results, table_names.all)
    if args.json:
        print(json.dumps({"benchmark": title, "model": lineup.contenders[0].choice.label,
                          "models": [c.choice.label for c in lineup.contenders],
                          "results": [str(_store(c).path) for c in lineup.contenders],
                          "settings": [asdict(s) for s in settings], "table": as_json(table)},
                         ensure_ascii=False, indent=2))
    else:
        _print_table(heading, table)
    if args.report:
        try:
            Path(args.report).write_text(markdown(heading, table), encoding="utf-8")
        except OSError as exc:  # the table is printed above: nothing is lost
            print(f"reflectchat: the report could not be written to {visible(args.report)}: "
                  f"{exc.strerror or exc}", file=sys.stderr)
    if len(results) < wanted:
        print(f"reflectchat: stopped after {len(results)} of {wanted} answers; run the "
              "same command to go on from there.", file=sys.stderr)
        return EXIT_CANCELLED
    return EXIT_OK if all(r.scored for r in results) else EXIT_FAILED


def _check_report(path: Path) -> None:
    """--report's file can be written: said before the first answer, not after the last."""
    folder = path.parent
    if path.is_dir():
        raise EvalError(f"--report {path} is a folder; name a file in it")
    if not folder.is_dir():
        raise EvalError(f"--report: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise EvalError(f"--report: {path} cannot be written here (permissions)")


def _pending(lineup: Lineup, items: list[Item], settings: list[Setting],
             ) -> tuple[list[Job], list[tuple[int, Result]]]:
    """The jobs still to answer, and the results kept from before (with their model)."""
    wanted = {(m, i.id, s.name) for m in range(len(lineup.contenders)) for i in items
              for s in settings}
    kept = [(m, r) for m, c in enumerate(lineup.contenders) for r in _store(c).read()
            if (m, r.item, r.setting) in wanted]
    for contender in lineup.contenders:
        if _store(contender).skipped:
            n = _store(contender).skipped
            print(f"reflectchat: {n} damaged line{'s' * (n != 1)} in {_store(contender).path} "
                  f"{'were' if n != 1 else 'was'} skipped; their items are answered again",
                  file=sys.stderr)
    pending = jobs(items, settings, {(m, r.item, r.setting) for m, r in kept},
                   len(lineup.contenders), lineup.turn)
    return pending, kept


def _store(contender: Contender) -> ResultsFile:
    assert contender.store is not None, "set by _prepare"
    return contender.store


class _Names:
    """Each configuration's name in the table: the setting alone with one model; the model's
    name (and the setting, with several) when models are compared."""

    def __init__(self, lineup: Lineup, settings: list[Setting]) -> None:
        self.models = [c.name for c in lineup.contenders]
        self.settings = [s.name for s in settings]
        self.all = [self.of(m, s) for m in range(len(self.models)) for s in self.settings]

    def of(self, model: int, setting: str) -> str:
        if len(self.models) == 1:
            return setting
        return self.models[model] if len(self.settings) == 1 else \
            f"{self.models[model]} · {setting}"

    def named(self, model: int, result: Result) -> Result:
        return replace(result, setting=self.of(model, result.setting))


def _print_table(heading: str, table: list) -> None:
    """The table, or, where the terminal is too narrow for all its columns, one compact table
    of what decides between configurations (each block of fields per configuration made six
    tall tables for two models x three settings), the rest named for --json."""
    from rich.table import Table

    from reflectchat.cli.console import CommandConsole
    from reflectchat.eval.report import HEADERS, cells, compact_cells

    console = CommandConsole(highlight=False)
    shown = Table(title=visible(heading), title_justify="left")
    for header in HEADERS:
        shown.add_column(header, overflow="fold")
    for row in table:
        shown.add_row(*(visible(c) for c in cells(row)))
    if console.measure(shown, options=console.options.update_width(100_000)).maximum \
            <= console.width:
        console.print(shown)
        return
    compact = Table(title=visible(heading), title_justify="left", padding=(0, 1))
    compact.add_column("setting", overflow="fold", ratio=1)
    for header in ("accuracy [95% CI]", "right", "vs first", "fixed/broken"):
        compact.add_column(header, overflow="fold", no_wrap=header != "vs first")
    for row in table:
        compact.add_row(*(visible(c) for c in compact_cells(row)))
    console.print(compact)
    console.print("Thinking tokens, time to output, tok/s and reflections: a wider terminal, "
                  "--json or --report.", style="dim")


class _Progress:
    """A bar on stderr with the ETA and each configuration's running accuracy."""

    def __init__(self, total: int, names: list[str], results: list[Result]) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        from reflectchat.cli.console import CommandConsole

        self.names, self.results = names, results
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                            console=CommandConsole(stderr=True), transient=True)
        self.task = self.bar.add_task(self._running(), total=total, completed=len(results))

    def _running(self) -> str:
        parts = []
        for name in self.names:
            mine = [r for r in self.results if r.setting == name and r.scored]
            parts.append(f"{name} {sum(r.correct for r in mine)}/{len(mine)}")
        return " · ".join(parts)

    def advance(self) -> None:
        self.bar.update(self.task, advance=1, description=self._running())

    def __enter__(self) -> _Progress:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()
