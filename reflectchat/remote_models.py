"""`reflectchat models --endpoint X`: what a server offers."""

from __future__ import annotations

import argparse
import json
import sys

from reflectchat.config import ConfigFile
from reflectchat.endpoints import resolve_endpoint
from reflectchat.engine.errors import EngineError
from reflectchat.literal import visible


def run_models(args: argparse.Namespace) -> int:
    try:
        endpoint = resolve_endpoint(args.endpoint, ConfigFile().endpoint_tables(),
                                    args.api_key_env)
        from reflectchat.engine.remote import list_models

        models = list_models(endpoint)
    except EngineError as exc:
        print(f"reflectchat: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(models, ensure_ascii=False, indent=2))
    elif not models:
        print(f"{endpoint.host} offers no models", file=sys.stderr)
    for model in [] if args.json else models:
        extra = f"  (context {model['max_model_len']:,})" if isinstance(
            model.get("max_model_len"), int) else ""
        print(visible(str(model.get("id"))) + extra)
    return 0
