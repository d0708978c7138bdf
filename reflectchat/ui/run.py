"""`reflectchat` with no command: open the app on the chosen model."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from reflectchat.catalog import CatalogError
from reflectchat.engine.base import Backend
from reflectchat.engine.errors import EngineError
from reflectchat.engine_args import choice_from_args, engine_settings
from reflectchat.model_choice import ModelChoice


def run_ui(args: argparse.Namespace) -> int:
    def choose(model: str | None, quant: str | None) -> ModelChoice:
        return choice_from_args(args, model, quant)

    def make_engine(choice: ModelChoice, progress: Callable[[float], bool]) -> Backend:
        from reflectchat.engine.llama import LlamaEngine

        return LlamaEngine(choice.path, engine_settings(args, choice), progress)

    try:
        choice = choice_from_args(args, args.model, args.quant, args.demo)
        engine_settings(args, choice).check()
    except (CatalogError, EngineError) as exc:
        print(f"reflectchat: {exc}", file=sys.stderr)
        return 1
    from reflectchat.ui.app import ReflectChatApp

    ReflectChatApp(choice, make_engine, choose=choose).run()
    return 0
