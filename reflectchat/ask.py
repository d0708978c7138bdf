"""`reflectchat ask`: one question, streamed to the terminal or returned as JSON."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

from reflectchat.answer import Answer
from reflectchat.catalog import CatalogError
from reflectchat.engine.base import ChatMessage, FinishReason
from reflectchat.engine.errors import EngineError
from reflectchat.engine_args import choice_from_args, engine_settings
from reflectchat.stream import channel_events

EXIT_OK, EXIT_FAILED, EXIT_CANCELLED = 0, 1, 130


@contextmanager
def _ctrl_c_stops(cancel: threading.Event) -> Iterator[None]:
    """The first Ctrl+C stops generation cleanly; a second one interrupts as usual."""
    def stop(_signum: int, _frame: object) -> None:
        cancel.set()
        signal.signal(signal.SIGINT, previous)

    previous = signal.signal(signal.SIGINT, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def run_ask(args: argparse.Namespace) -> int:
    prompt = args.prompt if args.prompt is not None else sys.stdin.read()
    if not prompt.strip():
        print("reflectchat: no prompt given (pass it as an argument or on stdin)", file=sys.stderr)
        return EXIT_FAILED
    view = None
    if not args.json:
        from rich.console import Console

        from reflectchat.terminal_view import TerminalView

        view = TerminalView(Console(highlight=False), Console(stderr=True, highlight=False))
    try:
        choice = choice_from_args(args, args.model, args.quant, args.demo)
        if view:
            view.banner(choice.label, choice.is_demo)
        from reflectchat.engine.llama import LlamaEngine

        engine = LlamaEngine(choice.path, engine_settings(args, choice))
        system = args.system if args.system is not None else choice.system_prompt
        messages = [ChatMessage("system", system)] if system else []
        messages.append(ChatMessage("user", prompt))
        sampling = replace(choice.sampling, max_tokens=args.max_tokens)
        if args.temperature is not None:
            sampling = replace(sampling, temperature=args.temperature)
        cancel = threading.Event()
        answer = Answer()
        generation = engine.generate(messages, sampling, cancel)
        with _ctrl_c_stops(cancel):
            for event in channel_events(generation, choice.tag_format, answer):
                if view:
                    view.show(event)
    except (EngineError, CatalogError) as exc:
        print(f"reflectchat: {exc}", file=sys.stderr)
        return EXIT_FAILED
    stats = generation.stats
    if view:
        view.finish(stats)
    else:
        print(json.dumps(answer.to_dict(stats.finish_reason.value, stats.to_dict()),
                         ensure_ascii=False, indent=2))
    if stats.error:
        print(f"reflectchat: {stats.error}", file=sys.stderr)
    if stats.finish_reason is FinishReason.ERROR:
        return EXIT_FAILED
    return EXIT_CANCELLED if stats.finish_reason is FinishReason.CANCELLED else EXIT_OK
