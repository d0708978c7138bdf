"""`reflectchat eval`: check a model's reasoning on this machine. A benchmark (GSM8K, MATH-500)
or a user's file, a fixed sample of it, answered under one or more reasoning settings through
the same path as `ask`; a table of accuracy with intervals, the paired differences and what the
reflections fixed and broke. Results are kept per item as they come: Ctrl+C stops cleanly, and
the same command resumes."""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path

from reflectchat.cli.args import check_args, choice_from_args, make_engine, with_answer_options
from reflectchat.cli.ask import ctrl_c_stops
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
    sample,
)
from reflectchat.eval.report import as_json, markdown, rows
from reflectchat.eval.results import Result, ResultsFile, RunInfo, results_file
from reflectchat.eval.runner import INSTRUCTION, Job, jobs, run_jobs
from reflectchat.eval.settings import Setting, parse_settings
from reflectchat.models.catalog import CatalogError
from reflectchat.models.choice import ModelChoice, settled_choice
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
    items = file_items(Path(args.file)) if args.file is not None else \
        benchmark_items(bench, fetch(bench))
    if args.n is not None and args.n < 1:
        raise EvalError(f"--n must be at least 1, not {args.n}")
    if len({i.id for i in items}) != len(items):
        raise EvalError(f"{title}: two items have the same id")
    return title, kind, sample(items, args.n, args.seed)


def run_key(title: str, items: list[Item], choice: ModelChoice) -> str:
    """Results are resumed only for the same items, model and sampling; settings are kept per
    result, so adding one later reuses the rest."""
    s = choice.sampling
    same = {"title": title, "items": digest(items), "model": choice.label,
            "quant": choice.quant, "system": choice.system_prompt, "temperature": s.temperature,
            "top_p": s.top_p, "top_k": s.top_k, "min_p": s.min_p, "max_tokens": s.max_tokens,
            "instruction": INSTRUCTION}
    return hashlib.sha256(json.dumps(same, sort_keys=True).encode()).hexdigest()[:16]


def _sessions(args: argparse.Namespace, choice: ModelChoice, engine: Backend
              ) -> object | None:
    """With --save-sessions, each answer is also a session in the history."""
    if not args.save_sessions:
        return None
    try:
        store = SessionStore.open()
    except StoreError as exc:
        print(f"reflectchat: {visible(str(exc))}; answers are not saved as sessions",
              file=sys.stderr)
        return None

    def recorder(job: Job) -> SessionRecorder:
        return SessionRecorder(store, SessionMeta(
            choice.model_id, choice.quant, choice.system_prompt,
            job.setting.applied(choice.sampling), engine.gpu_layers, engine.n_ctx))
    return recorder


def run(args: argparse.Namespace) -> int:
    try:
        title, kind, items = _items(args)
        settings = parse_settings(args.settings)
        choice = with_answer_options(args, choice_from_args(args, args.model, args.quant,
                                                            args.demo))
        if args.parallel < 1 or (args.parallel > 1 and choice.endpoint is None):
            raise EvalError("--parallel needs --endpoint: a model run here answers one "
                            "prompt at a time" if args.parallel > 1 else
                            "--parallel must be at least 1")
        check_args(args, choice)
        engine = make_engine(args, choice)
        choice = settled_choice(choice, engine)
    except (EvalError, EngineError, CatalogError) as exc:
        return fail(exc)
    store = ResultsFile(results_file(run_key(title, items, choice)))
    store.describe(RunInfo(title, choice.label, [s.name for s in settings], len(items),
                           kind.value, time.time()))
    wanted = {(i.id, s.name) for i in items for s in settings}
    kept = [r for r in store.read() if (r.item, r.setting) in wanted]
    pending = jobs(items, settings, {(r.item, r.setting) for r in kept})
    print(f"reflectchat: {visible(title)}, {len(items)} items x {len(settings)} setting"
          f"{'s' * (len(settings) != 1)} on {visible(choice.label)}; results in {store.path}"
          + (f" ({len(kept)} kept from before)" if kept else ""), file=sys.stderr)
    cancel = threading.Event()
    results = list(kept)
    with ctrl_c_stops(cancel), _Progress(len(wanted), settings, results) as progress:
        for result in run_jobs(engine, choice, kind, pending, args.seed, cancel,
                               args.parallel, _sessions(args, choice, engine)):
            store.add(result)
            results.append(result)
            progress.advance(result)
    engine.close()
    table = rows(results, [s.name for s in settings])
    if args.report:
        Path(args.report).write_text(markdown(f"{title}: {choice.label}", table),
                                     encoding="utf-8")
    if args.json:
        print(json.dumps({"benchmark": title, "model": choice.label, "results": str(store.path),
                          "settings": [asdict(s) for s in settings], "table": as_json(table)},
                         ensure_ascii=False, indent=2))
    else:
        _print_table(title, choice.label, table)
    if len(results) < len(wanted):
        print(f"reflectchat: stopped after {len(results)} of {len(wanted)} answers; run the "
              "same command to go on from there.", file=sys.stderr)
        return EXIT_CANCELLED
    return EXIT_OK if all(r.scored for r in results) else EXIT_FAILED


def _print_table(title: str, model: str, table: list) -> None:
    from rich.console import Console
    from rich.table import Table

    from reflectchat.eval.report import HEADERS, cells

    shown = Table(title=f"{visible(title)}: {visible(model)}", title_justify="left")
    for header in HEADERS:
        shown.add_column(header, overflow="fold")
    for row in table:
        shown.add_row(*(visible(c) for c in cells(row)))
    Console(highlight=False).print(shown)


class _Progress:
    """A bar on stderr with the ETA and each setting's running accuracy."""

    def __init__(self, total: int, settings: list[Setting], results: list[Result]) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.settings, self.results = settings, results
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                            console=Console(stderr=True), transient=True)
        self.task = self.bar.add_task(self._running(), total=total, completed=len(results))

    def _running(self) -> str:
        parts = []
        for s in self.settings:
            mine = [r for r in self.results if r.setting == s.name and r.scored]
            parts.append(f"{s.name} {sum(r.correct for r in mine)}/{len(mine)}")
        return " · ".join(parts)

    def advance(self, result: Result) -> None:
        self.bar.update(self.task, advance=1, description=self._running())

    def __enter__(self) -> _Progress:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()
