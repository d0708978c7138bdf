"""`reflectchat` with no command: open the app on the chosen model."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import replace

from reflectchat.catalog import CatalogError
from reflectchat.engine.base import Backend
from reflectchat.engine.errors import EngineError
from reflectchat.engine_args import engine_settings
from reflectchat.model_choice import ModelChoice, choose_model
from reflectchat.reflection import TagFormat


def run_ui(args: argparse.Namespace) -> int:
    def choose(model: str | None, quant: str | None) -> ModelChoice:
        choice = choose_model(model, quant, demo=model is None)
        return replace(choice, tag_format=TagFormat(args.format)) if args.format else choice

    def make_engine(choice: ModelChoice, progress: Callable[[float], bool]) -> Backend:
        from reflectchat.engine.llama import LlamaEngine

        return LlamaEngine(choice.path, engine_settings(args, choice), progress)

    try:
        choice = choose(args.model, args.quant) if not args.demo else choose(None, None)
        engine_settings(args, choice).check()
    except (CatalogError, EngineError) as exc:
        print(f"reflectchat: {exc}", file=sys.stderr)
        return 1
    from reflectchat.ui.app import ReflectChatApp

    ReflectChatApp(choice, make_engine, choose=choose).run()
    return 0
