"""The models `reflectchat eval` compares: the one `--model`/`--endpoint` names, and each `--vs`
(a GGUF file, a catalog id with `:QUANT`, a server's URL or `endpoint:NAME`). Every option
given (format, system prompt, answer limit, runtime) applies to each, so that they answer
under the same conditions."""

from __future__ import annotations

import argparse
from pathlib import Path

from reflectchat.cli.args import check_args, choice_from_args, make_engine, with_answer_options
from reflectchat.eval.items import EvalError
from reflectchat.eval.lineup import Contender


def _args_for(args: argparse.Namespace, spec: str) -> argparse.Namespace:
    """`args` with the model replaced by what one `--vs` names."""
    other = argparse.Namespace(**vars(args))
    other.demo = False
    if spec.startswith(("http://", "https://", "endpoint:")):
        other.endpoint, other.model, other.quant = spec.removeprefix("endpoint:"), None, None
        return other
    other.endpoint = None
    path = Path(spec).expanduser()
    if not path.exists() and path.suffix != ".gguf" and ":" in spec:
        other.model, _, other.quant = spec.rpartition(":")
    else:
        other.model, other.quant = spec, None
    if not other.model:
        raise EvalError(f"--vs {spec!r} names no model")
    return other


def _contender(args: argparse.Namespace) -> Contender:
    choice = with_answer_options(args, choice_from_args(args, args.model, args.quant,
                                                        args.demo))
    check_args(args, choice)
    return Contender(choice, lambda chosen: make_engine(args, chosen))


def contenders(args: argparse.Namespace) -> list[Contender]:
    """The compared models, each with how to load it; nothing is loaded yet. Raises
    EngineError, CatalogError or EvalError for a model that cannot be run."""
    found = [_contender(args)] + [_contender(_args_for(args, spec)) for spec in args.vs or []]
    if args.parallel > 1 and any(c.local for c in found):
        raise EvalError("--parallel needs --endpoint (and every --vs a server): a model run "
                        "here answers one prompt at a time")
    return found


def name_them(found: list[Contender]) -> None:
    """Each contender's name in the table: its label, numbered where two labels are alike."""
    labels = [c.choice.label for c in found]
    for n, contender in enumerate(found):
        alike = labels.count(contender.choice.label) > 1
        contender.name = f"{contender.choice.label} #{n + 1}" if alike else \
            contender.choice.label
