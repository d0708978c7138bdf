"""`reflectchat tune`: Selective Reflection-Tuning on the user's own chats.

    tune score    IFD and r-IFD of each saved (prompt, output) pair, with the loaded model
    tune reflect  the teacher rewrites each scored pair's instruction and answer
    tune select   the selection rule's verdict per pair, and a summary
    tune export   the kept pairs as a JSONL dataset (alpaca, sharegpt or messages)

Every step saves each pair as it goes (the store's tune_pairs table), so a killed run loses at
most the pair it was on, and running it again carries on.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from reflectchat.cli.args import choice_from_args, make_engine, with_answer_options
from reflectchat.cli.output import EXIT_CANCELLED, EXIT_OK, fail
from reflectchat.engine.base import Backend
from reflectchat.engine.errors import EngineError
from reflectchat.models.catalog import CatalogError
from reflectchat.models.choice import ModelChoice, settled_choice
from reflectchat.store.compared import comparisons
from reflectchat.store.session_store import SessionStore, StoreError
from reflectchat.store.tune_pairs import StoredPair, left_out, pairs
from reflectchat.tune.dataset import (
    AXOLOTL,
    HALVES,
    Decision,
    decide,
    halves_to_reflect,
    summary,
    write_dataset_info,
    write_jsonl,
)
from reflectchat.tune.preferences import write_preferences
from reflectchat.tune.runs import pending, score_pending
from reflectchat.untrusted import visible

NO_LOGITS = ("Scoring needs the model's logits for every token of a prompt, which a server's "
             "API does not give: load a GGUF here (--model) to score.")

if TYPE_CHECKING:
    from reflectchat.engine.scoring import Scorer

NOTHING = "No finished answers to work on yet: chat in the app or run `reflectchat ask` first."


def run(args: argparse.Namespace) -> int:
    try:
        store = SessionStore.open()
    except StoreError as exc:
        return fail(exc)
    try:
        wanted = _sessions(args)
        if args.action == "export" and args.preferences:
            return _export_preferences(args, store, wanted)
        include_cut = getattr(args, "include_cut", False)
        found = pairs(store, wanted, include_cut)
        unused = left_out_sentence(left_out(store, wanted, include_cut))
        if not found:
            return fail(f"{NOTHING} {unused}" if unused else NOTHING)
        if unused:
            print(f"reflectchat: {unused}", file=sys.stderr)
        action = {"score": _score, "reflect": _reflect, "select": _select,
                  "export": _export}[args.action]
        return action(args, store, found)
    except (EngineError, CatalogError, ValueError) as exc:
        return fail(exc)
    finally:
        store.close()


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' * (n != 1)}"


def left_out_sentence(counts: dict[str, int]) -> str:
    """"Left out: 2 answers cut at the token limit (--include-cut takes them), 1 stopped." """
    if not counts:
        return ""
    words = {"cut": "cut at the token limit (--include-cut takes them)",
             "stopped": "stopped before the end", "interrupted": "interrupted (the app closed)",
             "failed": "that failed", "no output": "without output"}
    parts = [f"{n} answer{'s' * (n != 1)} {words[why]}" for why, n in sorted(counts.items())]
    return f"Left out: {', '.join(parts)}."


def _sessions(args: argparse.Namespace) -> tuple[int, ...]:
    if not getattr(args, "sessions", None) or getattr(args, "all", False):
        return ()
    try:
        return tuple(int(x) for x in args.sessions.split(","))
    except ValueError:
        raise ValueError(f"--sessions takes session ids like 3,7, not {args.sessions!r}") \
            from None


def _engine(args: argparse.Namespace) -> tuple[Backend, ModelChoice]:
    """The model loaded, and the choice as it settled (its reasoning format found)."""
    choice = with_answer_options(args, choice_from_args(args, args.model, args.quant, args.demo))
    engine = make_engine(args, choice)
    if engine.load_note:
        print(f"reflectchat: {visible(engine.load_note)}", file=sys.stderr)
    return engine, settled_choice(choice, engine)


def _scorer(engine: Backend) -> Scorer:
    from reflectchat.engine.llama import LlamaEngine
    from reflectchat.engine.scoring import Scorer

    if not isinstance(engine, LlamaEngine):
        raise EngineError(NO_LOGITS)
    return Scorer(engine)


def _score(args: argparse.Namespace, store: SessionStore, found: list[StoredPair]) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from reflectchat.cli.console import CommandConsole

    if args.endpoint:
        return fail(NO_LOGITS)
    engine, _ = _engine(args)
    scorer = _scorer(engine)
    model = engine.path.name  # type: ignore[attr-defined]
    todo = pending(found, model)
    done_before = len(found) - len({p.message_id for p, w in todo if w == "scores"})
    start = time.perf_counter()
    err = CommandConsole(stderr=True, highlight=False, markup=False)
    with Progress(TextColumn("scoring"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[rate]}"), console=err,
                  disable=args.json or not todo) as progress:
        task = progress.add_task("score", total=len(todo), rate="")

        def tick() -> None:
            seconds = max(time.perf_counter() - start, 1e-9)
            done = progress.tasks[0].completed + 1
            progress.update(task, advance=1, rate=f"{done / seconds:.2f} pairs/s, "
                            f"{scorer.tokens_evaluated / seconds:,.0f} tokens/s")

        try:
            results, too_long = score_pending(scorer, store, todo, model, tick)
        except KeyboardInterrupt:
            err.print("Stopped; every pair scored so far is saved: run the same command to "
                      "carry on.")
            return EXIT_CANCELLED
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        err.print(f"Scored {_count(len(results), 'pair')}; {_count(done_before, 'pair')} "
                  f"{'was' if done_before == 1 else 'were'} already scored with {model}.")
    if too_long:
        print(f"{too_long} pair{'s' * (too_long != 1)} longer than the "
              f"{engine.n_ctx:,}-token context {'were' if too_long != 1 else 'was'} skipped, "
              "not cut: --ctx N scores them.", file=sys.stderr)
    return EXIT_OK


def _reflect(args: argparse.Namespace, store: SessionStore, found: list[StoredPair]) -> int:
    from reflectchat.tune.reflecting import TEACHER_SAMPLING, reflect_pair

    scored = [p for p in found if p.saved.get("scores")]
    if not scored:
        return fail("No pair is scored yet: run `reflectchat tune score` first.")
    todo = [p for p in scored if args.redo or halves_to_reflect(p.saved)]
    engine, choice = _engine(args)
    # the paper's teacher decodes greedily; --temperature, --max-tokens and --system act
    sampling = replace(TEACHER_SAMPLING, max_tokens=args.max_tokens,
                       temperature=0.0 if args.temperature is None else args.temperature)
    from reflectchat.engine.llama import LlamaEngine

    student = _scorer(engine) if isinstance(engine, LlamaEngine) else None
    view = None
    if not args.json:
        from reflectchat.cli.ask_view import TerminalView
        from reflectchat.cli.console import CommandConsole

        view = TerminalView(CommandConsole(highlight=False),
                            CommandConsole(stderr=True, highlight=False))
    results = []
    for n, pair in enumerate(todo, 1):
        if view is not None:
            print(f"\n== pair {n} of {len(todo)} (session {pair.session_id}): "
                  f"{visible(pair.prompt.strip()[:60])}", file=sys.stderr)
        outcome = reflect_pair(engine, pair, store, view, sampling, args.system or "",
                               choice.tag_format,
                               tuple(HALVES) if args.redo else halves_to_reflect(pair.saved))
        if view is not None:
            print(flush=True)  # the teacher's answer ends its line before any message
        if student is not None:  # whatever rewrite it gave is scored now, even if one failed
            model = engine.path.name  # type: ignore[attr-defined]
            score_pending(student, store,
                          [w for w in pending([pair], model) if w[1] != "scores"], model)
        results.append(outcome)
        if outcome.get("error"):
            print(f"reflectchat: pair {n} of {len(todo)} (session {pair.session_id}): "
                  f"{outcome['error']} (the teacher's answer is kept)", file=sys.stderr)
    if args.json:
        print(json.dumps(results, ensure_ascii=False, indent=2))
    if student is None:
        print("The teacher is a server: run `reflectchat tune score` with the local model to "
              "score its rewrites.", file=sys.stderr)
    return EXIT_OK


def _select(args: argparse.Namespace, store: SessionStore, found: list[StoredPair]) -> int:
    decisions = [decide(p) for p in found]
    if args.json:
        print(json.dumps([{"message": d.pair.message_id, "session": d.pair.session_id,
                           "kept": d.kept, "rule": d.rule,
                           "scores": d.pair.saved.get("scores")} for d in decisions],
                         indent=2))
        return EXIT_OK
    for d in decisions:
        scores = d.pair.saved.get("scores") or {}
        figures = f"IFD {scores['ifd']:.3f}  r-IFD {scores['rifd']:.3f}" if scores else \
            "not scored"
        print(f"{d.pair.message_id:>6}  session {d.pair.session_id:<5} {figures:<28} "
              f"{d.kept or 'dropped':<12} {d.rule}")
    _print_summary(decisions)
    return EXIT_OK


def _print_summary(decisions: list[Decision]) -> None:
    kept = sum(d.kept is not None for d in decisions)
    counts = ", ".join(f"{n} {rule}" for rule, n in summary(decisions).most_common())
    print(f"Kept {kept} of {len(decisions)}: {counts}.", file=sys.stderr)


def _export_preferences(args: argparse.Namespace, store: SessionStore,
                        wanted: tuple[int, ...]) -> int:
    found = comparisons(store, wanted)
    if not found:
        return fail("No compared answers yet: F10 in the app asks one prompt of two setups "
                    "side by side, and 1, 2 or = marks the better one.")
    path = Path(args.output).expanduser()
    reasoning = {"drop": False, "keep": True, "field": "field"}[args.reasoning]
    try:
        written = write_preferences(found, args.format, path, reasoning)
        info = write_dataset_info(path, args.format, ranking=True) \
            if written and args.format != "messages" else None
    except OSError as exc:
        return fail(f"Cannot write {path}: {exc.strerror or exc}")
    if info is not None:
        print(f"LLaMA-Factory: {visible(str(info))} names it {visible(path.stem)!r} "
              "(ranking: true).", file=sys.stderr)
    elif written:
        print("TRL: DPOTrainer reads it as it is (the conversational preference format).",
              file=sys.stderr)
    ties = sum(c.choice == "tie" for c in found)
    unmarked = sum(c.choice is None for c in found)
    left = ", ".join(f"{n} {what}" for n, what in ((ties, "tied"), (unmarked, "not marked"))
                     if n)
    print(f"Wrote {written} preference pair{'s' * (written != 1)} to {visible(str(path))} "
          f"({args.format})" + (f"; left out: {left}." if left else "."), file=sys.stderr)
    return EXIT_OK


def _export(args: argparse.Namespace, store: SessionStore, found: list[StoredPair]) -> int:
    decisions = [decide(p) for p in found]
    path = Path(args.output).expanduser()
    try:
        reasoning = {"drop": False, "keep": True, "field": "field"}[args.reasoning]
        written = write_jsonl(decisions, args.format, path, reasoning)
        # no dataset to name with no records: LLaMA-Factory would list an empty one
        info = write_dataset_info(path, args.format) if written else None
    except OSError as exc:
        return fail(f"Cannot write {path}: {exc.strerror or exc}")
    if info is not None:
        print(f"LLaMA-Factory: {visible(str(info))} names it {visible(path.stem)!r}.",
              file=sys.stderr)
    if written and args.format in AXOLOTL:
        print(f"Axolotl: {AXOLOTL[args.format]}.", file=sys.stderr)
    print(f"Wrote {written} record{'s' * (written != 1)} to {visible(str(path))} "
          f"({args.format}).", file=sys.stderr)
    _print_summary(decisions)
    return EXIT_OK
