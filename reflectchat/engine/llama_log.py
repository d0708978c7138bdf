"""Keep llama.cpp's log off the user's terminal, but at hand: its errors for our messages, and
the buffer sizes it reports while a model loads (what it really allocated, for the plan)."""

from __future__ import annotations

import re
from collections import deque

from reflectchat.engine.llama_cpp_api import route_log

_ERROR_LEVEL = 4  # ggml_log_level: 1 debug, 2 info, 3 warn, 4 error, 5 continuation
_LOAD_LOG_LIMIT = 1 << 20  # characters kept from one load's log
_BUFFER = re.compile(r"(\S+)\s+(model|KV|compute|output) buffer size =\s+([\d.]+) MiB")
_OVERRIDDEN = re.compile(r"tensor (\S+) \([^)]*\) buffer type overridden to (\S+)")
recent_errors: deque[str] = deque(maxlen=20)


class _LoadLog:
    """One load's log, up to `_LOAD_LOG_LIMIT` characters, counted as lines arrive (a file
    with 300,000 special tokens logs a line for each: summing the log on every line took
    minutes)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.size = 0

    def add(self, line: str) -> None:
        if self.size < _LOAD_LOG_LIMIT:
            self.lines.append(line)
            self.size += len(line)

    def text(self) -> str:
        return "".join(self.lines)

    def clear(self) -> None:
        self.lines.clear()
        self.size = 0


_load_log = _LoadLog()


def _on_log(level: int, line: str) -> None:
    if level == _ERROR_LEVEL and line.strip():
        recent_errors.append(line.strip())
    _load_log.add(line)


def capture_llama_log() -> None:
    """Route llama.cpp's log into `recent_errors` and a fresh load log (call before loading a
    model)."""
    recent_errors.clear()
    _load_log.clear()
    route_log(_on_log)


def overridden_tensors() -> dict[str, str]:
    """The tensors the last load placed by an override, and where ("CPU", "CUDA0", ...), as
    llama.cpp logged them (read before `loaded_buffers`, which ends the load's log)."""
    return dict(_OVERRIDDEN.findall(_load_log.text()))


def loaded_buffers() -> dict[str, int]:
    """The buffers the last load allocated, in bytes, by "DEVICE kind" ("CPU_Mapped model",
    "CPU KV", "CUDA0 compute", ...), summed over the lines llama.cpp logged for each."""
    sizes: dict[str, int] = {}
    for device, kind, mib in _BUFFER.findall(_load_log.text()):
        key = f"{device} {kind}"
        sizes[key] = sizes.get(key, 0) + round(float(mib) * 2**20)
    _load_log.clear()
    return sizes
