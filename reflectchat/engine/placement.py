"""Where a model's tensors go, beyond whole layers: llama.cpp's tensor overrides
(`--override-tensor PATTERN=BUFFER`, and its `--cpu-moe` / `--n-cpu-moe N` shorthands that keep a
mixture of experts' expert tensors in RAM while the rest of each layer runs on the GPU)."""

from __future__ import annotations

import re

from reflectchat.engine.errors import EngineError
from reflectchat.engine.sandbox import BoundError, SandboxError, run_bounded

# llama.cpp's LLM_FFN_EXPS_REGEX (common/common.h): every expert tensor of a layer
EXPERTS = r"\.ffn_(up|down|gate|gate_up)_(ch|)exps"

Override = tuple[str, str]  # (pattern, buffer type)
PATTERN_LIMIT_S = 5.0  # every pattern over every tensor name; real ones take milliseconds


def experts_in_ram(layers: int | None) -> tuple[Override, ...]:
    """The experts of the first `layers` layers in RAM (None: of every layer), as llama.cpp's
    --n-cpu-moe and --cpu-moe place them."""
    if layers is None:
        return ((EXPERTS, "CPU"),)
    return tuple((rf"blk\.{i}{EXPERTS}", "CPU") for i in range(layers))


def parse_overrides(text: str) -> tuple[Override, ...]:
    """"PATTERN=BUFFER[,PATTERN=BUFFER...]", as llama.cpp's --override-tensor takes it."""
    found = []
    for item in text.split(","):
        pattern, equals, buffer = item.rpartition("=")
        if not equals or not pattern or not buffer:
            raise EngineError(f"--override-tensor takes PATTERN=BUFFER (e.g. "
                              f"'{EXPERTS}=CPU'), not {item!r}")
        try:
            re.compile(pattern)
        except re.error as exc:
            raise EngineError(f"--override-tensor: {pattern!r} is not a valid pattern "
                              f"({exc})") from None
        found.append((pattern, buffer))
    return tuple(found)


def check_patterns(overrides: tuple[Override, ...], names: list[str]) -> None:
    """Refuse, in one sentence, patterns that backtrack without end over these tensor names:
    llama.cpp matches them with std::regex while it loads, where nothing can stop it."""
    patterns = sorted({pattern for pattern, _ in overrides})
    try:
        run_bounded("reflectchat.engine.placement:matches", patterns, names,
                    seconds=PATTERN_LIMIT_S)
    except BoundError:
        raise EngineError(
            f"--override-tensor: matching {', '.join(repr(p) for p in patterns)} against this "
            f"model's {len(names):,} tensor names took over {PATTERN_LIMIT_S:g} s, so llama.cpp "
            "would hang loading it; write the pattern without nested repeats like (a+)+"
        ) from None
    except SandboxError:  # a pattern only llama.cpp's regex reads: it will say so itself
        pass


def matches(patterns: list[str], names: list[str]) -> list[int]:
    """How many of the names each pattern finds anywhere in them, as std::regex_search does
    (run in the bounded process: `check_patterns`)."""
    return [sum(1 for name in names if re.search(pattern, name)) for pattern in patterns]
