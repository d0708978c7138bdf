"""The model and engine settings the command line asks for, shared by `ask` and the app."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from reflectchat.cli.option_values import MAX_LAYERS
from reflectchat.config import ConfigFile
from reflectchat.engine.base import (
    DEFAULT_SPECULATION,
    EFFORTS,
    SPECULATION,
    Backend,
    Runtime,
    Sampling,
    TagFormat,
)
from reflectchat.engine.endpoints import resolve_endpoint
from reflectchat.engine.errors import EngineError
from reflectchat.engine.placement import Override, experts_in_ram, parse_overrides
from reflectchat.models.choice import ModelChoice, choose_model, context_for, endpoint_choice

if TYPE_CHECKING:  # the engine imports llama_cpp, which loads only once a command runs
    from reflectchat.engine.llama import EngineSettings


def choice_from_args(args: argparse.Namespace, model: str | None, quant: str | None,
                     demo: bool = False) -> ModelChoice:
    """The model to run (no model: the demo; with --endpoint: the server's model), with
    `--format` overriding its tag format."""
    if getattr(args, "endpoint", None):
        choice = remote_choice(args, model)
    else:
        choice = choose_model(model, quant, demo)
    answer = getattr(args, "answer_tags", None)
    if answer is not None and not getattr(args, "think_tags", None):
        raise EngineError("--answer-tags goes with --think-tags (the thinking's pair)")
    if getattr(args, "think_tags", None):
        try:
            tags = TagFormat.think_tags(args.think_tags, answer)
        except ValueError as exc:
            raise EngineError(f"--think-tags: {exc}") from None
        return replace(choice, tag_format=tags, format_why="--think-tags", format_pinned=True)
    if args.format:
        return replace(choice, tag_format=TagFormat.parse(args.format), format_why="--format",
                       format_pinned=True)
    return configured_format(choice, ConfigFile())


def configured_format(choice: ModelChoice, config: ConfigFile) -> ModelChoice:
    """The format config.toml names for this model (`[models."ID"]`: think_tags or format)."""
    name, table = config.model_table(choice.model_id, choice.path.name)
    if not table:
        return choice
    where = f'{config.path}: [models."{name}"]'
    try:
        if isinstance(table.get("think_tags"), str):
            answer = table.get("answer_tags")
            fmt = TagFormat.think_tags(str(table["think_tags"]),
                                       answer if isinstance(answer, str) else None)
        elif isinstance(table.get("format"), str):
            fmt = TagFormat.parse(str(table["format"]))
        else:
            return choice
    except ValueError as exc:
        raise EngineError(f"{where}: {exc}") from None
    return replace(choice, tag_format=fmt, format_why=f"config.toml [models.\"{name}\"]",
                   format_pinned=True)


def with_answer_options(args: argparse.Namespace, choice: ModelChoice) -> ModelChoice:
    """The choice with --system, --max-tokens and --temperature applied."""
    sampling = replace(choice.sampling, max_tokens=args.max_tokens)
    if args.temperature is not None:
        sampling = replace(sampling, temperature=args.temperature)
    sampling = _reasoning_options(args, choice, sampling)
    system = args.system if args.system is not None else choice.system_prompt
    return replace(choice, system_prompt=system, sampling=sampling)


def _reasoning_options(args: argparse.Namespace, choice: ModelChoice,
                       sampling: Sampling) -> Sampling:
    """--effort, --thinking-budget and --no-loop-stop, else what config.toml's
    `[models."ID"]` table says (effort, thinking_budget)."""
    config = ConfigFile()
    name, table = config.model_table(choice.model_id, choice.path.name)
    effort = getattr(args, "effort", None) or table.get("effort")
    budget = getattr(args, "thinking_budget", None)
    if budget is None:
        budget = table.get("thinking_budget")
    where = f'config.toml [models."{name}"]' if name else ""
    if effort is not None and effort not in EFFORTS:
        raise EngineError(f"{where}: effort must be one of {', '.join(EFFORTS)}, not {effort!r}")
    if budget is not None and (not isinstance(budget, int) or isinstance(budget, bool)
                               or budget < 0):
        raise EngineError(f"{'--thinking-budget' if not where else where + ': thinking_budget'}"
                          f" must be a whole number of tokens, 0 or more, not {budget!r}")
    return replace(sampling, effort=effort, thinking_budget=budget,
                   stop_loops=not getattr(args, "no_loop_stop", False))


def runtime_of(args: argparse.Namespace) -> Runtime:
    """How the command line asks the model to run, as the app's F8 edits it."""
    return Runtime(args.ctx, args.threads, args.gpu_layers, args.n_cpu_moe,
                   args.draft_model or args.spec)


def with_runtime(args: argparse.Namespace, runtime: Runtime) -> argparse.Namespace:
    """The command line's options with the app's runtime settings (F8) in their place."""
    spec = runtime.speculation
    drafting = {} if spec is None else {"spec": spec, "draft_model": None} \
        if spec in ("off", "ngram") else {"spec": "draft", "draft_model": spec}
    return argparse.Namespace(**{**vars(args), "ctx": runtime.n_ctx,
                                 "threads": runtime.n_threads,
                                 "gpu_layers": runtime.gpu_layers,
                                 "n_cpu_moe": runtime.experts_in_ram, **drafting})


def remote_choice(args: argparse.Namespace, model: str | None) -> ModelChoice:
    config = ConfigFile()
    endpoint = resolve_endpoint(args.endpoint, config.endpoint_tables(), args.api_key_env)
    if args.timeout is not None:
        endpoint = replace(endpoint, timeout=args.timeout)
    if model:
        endpoint = replace(endpoint, model=model)
    return endpoint_choice(endpoint)


def make_engine(args: argparse.Namespace, choice: ModelChoice,
                progress: Callable[[float], bool] | None = None,
                paced: bool = False) -> Backend:
    """The backend for a choice: a remote server's, or llama.cpp in this process. `paced`: the
    demo replays at a real model's pace (the app's, so its panes can be watched)."""
    if choice.endpoint is not None:
        from reflectchat.engine.remote import RemoteEngine

        return RemoteEngine(choice.endpoint, choice.endpoint.model, choice.tag_format)
    from reflectchat.models.loading import load_with_fallback

    settings = engine_settings(args, choice)
    if choice.is_demo:
        from reflectchat.demo import DEMO_TOKENS_PER_SECOND

        settings = replace(settings, recording=True,
                           pace=DEMO_TOKENS_PER_SECOND if paced else None)
    return load_with_fallback(choice.path, settings, progress)


def check_args(args: argparse.Namespace, choice: ModelChoice) -> None:
    """Reject bad runtime options before anything loads (they do not apply to a server)."""
    if choice.endpoint is None:
        engine_settings(args, choice).check()


def tensor_split(args: argparse.Namespace) -> tuple[float, ...] | None:
    """--tensor-split A,B,...: each GPU's share of the layers."""
    if not args.tensor_split:
        return None
    try:
        split = tuple(float(x) for x in args.tensor_split.split(","))
    except ValueError:
        split = ()
    if not split or not all(math.isfinite(x) and x >= 0 for x in split) or not sum(split) > 0:
        raise EngineError(f"--tensor-split takes shares like 3,1, not {args.tensor_split!r}")
    return split


REPACK = {"auto": None, "on": True, "off": False}


def engine_settings(args: argparse.Namespace, choice: ModelChoice) -> EngineSettings:
    from reflectchat.engine.llama import EngineSettings
    from reflectchat.engine.llama_cpp_api import supports_gpu_offload
    from reflectchat.models.loading import planned_load

    n_ctx = context_for(choice, args.ctx)
    split = tensor_split(args)
    gpu_layers, repack = args.gpu_layers, REPACK[args.repack]
    overrides = tensor_overrides(args, choice)
    if gpu_layers is None or repack is None:  # as the memory plan says
        planned = planned_load(choice.path, n_ctx, args.cache_type_k, args.cache_type_v,
                               args.flash_attn, split, gpu_layers, repack)
        if gpu_layers is None and supports_gpu_offload():
            gpu_layers = planned.gpu_layers
            if overrides is None and planned.experts_in_ram:
                overrides = experts_in_ram(planned.experts_in_ram)
        repack = planned.repack
    settings = EngineSettings(
        n_gpu_layers=gpu_layers or 0, n_ctx=n_ctx, flash_attn=args.flash_attn,
        type_k=args.cache_type_k, type_v=args.cache_type_v, tensor_split=split,
        n_threads=args.threads, use_mmap=not args.no_mmap, use_mlock=args.mlock,
        template=args.template, repack=repack, overrides=overrides or (),
    )
    return speculation(args, choice, settings)


def speculation(args: argparse.Namespace, choice: ModelChoice,
                settings: EngineSettings) -> EngineSettings:
    """--spec, --draft-model, --draft-max, --draft-p-min and --draft-gpu-layers, else what
    config.toml's `[models."ID"]` says (spec, draft_model, draft_max, draft_p_min); the demo
    replays a recording and never speculates."""
    if choice.is_demo:
        return settings
    name, table = ConfigFile().model_table(choice.model_id, choice.path.name)
    where = f'config.toml [models."{name}"]'
    draft = getattr(args, "draft_model", None) or table.get("draft_model")
    kind = getattr(args, "spec", None) or table.get("spec") or (
        "draft" if draft else DEFAULT_SPECULATION)
    if kind not in SPECULATION:
        raise EngineError(f"{where}: spec must be one of {', '.join(SPECULATION)}, not "
                          f"{kind!r}")
    if kind == "draft" and not isinstance(draft, str):
        raise EngineError("Drafting with a model needs one: --draft-model PATH_OR_ID, or "
                          f"draft_model in {where}")
    numbers: dict[str, int | float | None] = {}
    for option, kinds in (("draft_max", (int,)), ("draft_p_min", (int, float))):
        value = getattr(args, option, None)
        if value is None and option in table:
            value = table[option]
            if not isinstance(value, kinds) or isinstance(value, bool):
                raise EngineError(f"{where}: {option} must be a number, not {value!r}")
        numbers[option] = value
    path = None
    layers = getattr(args, "draft_gpu_layers", None)
    if kind == "draft":
        assert isinstance(draft, str)
        path = choose_model(draft, None, False).path
        if layers is None:  # as the memory plan says: beside a model wholly on a GPU
            from reflectchat.engine.llama_cpp_api import supports_gpu_offload
            from reflectchat.models.loading import draft_fits_on_gpu

            layers = -1 if supports_gpu_offload() and draft_fits_on_gpu(
                choice.path, path, settings.n_ctx, settings.type_k, settings.type_v,
                settings.flash_attn, settings.tensor_split) else 0
    return replace(settings, speculation=kind, draft_model=path, draft_gpu_layers=layers or 0,
                   draft_max=numbers["draft_max"], draft_p_min=numbers["draft_p_min"])


def tensor_overrides(args: argparse.Namespace,
                     choice: ModelChoice) -> tuple[Override, ...] | None:
    """--override-tensor, --cpu-moe and --n-cpu-moe, else config.toml's `[models."ID"]`
    (override_tensor, cpu_moe, n_cpu_moe); None: none asked for (the plan places them)."""
    name, table = ConfigFile().model_table(choice.model_id, choice.path.name)
    where = f'config.toml [models."{name}"]'
    given = getattr(args, "override_tensor", None)
    if not given and isinstance(table.get("override_tensor"), list):
        given = [str(item) for item in table["override_tensor"]]
    found = [o for text in given or () for o in parse_overrides(text)]
    cpu_moe = getattr(args, "cpu_moe", False) or table.get("cpu_moe") is True
    layers = getattr(args, "n_cpu_moe", None)
    if layers is None and "n_cpu_moe" in table:
        layers = table["n_cpu_moe"]
        if not isinstance(layers, int) or isinstance(layers, bool):
            raise EngineError(f"{where}: n_cpu_moe must be a whole number of layers")
    if layers is not None and layers < 0:
        raise EngineError(f"--n-cpu-moe takes a number of layers, 0 or more, not {layers}")
    if cpu_moe or layers:
        every = cpu_moe or layers >= _layer_count(choice.path)
        found += experts_in_ram(None if every else layers)
    return tuple(found) if found or layers == 0 else None


def _layer_count(path: Path) -> int:
    """The model's layers, from its header: --n-cpu-moe past them means every layer (one
    pattern, not millions). Without a readable header, the most the option takes."""
    from reflectchat.engine.gguf_header import HeaderError, read_local

    try:
        metadata = read_local(path).metadata
    except (OSError, HeaderError):
        return MAX_LAYERS
    count = metadata.get(f"{metadata.get('general.architecture')}.block_count")
    return count if isinstance(count, int) and 0 < count < MAX_LAYERS else MAX_LAYERS
