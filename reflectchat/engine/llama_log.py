"""Keep llama.cpp's log off the user's terminal, but at hand for error messages."""

from __future__ import annotations

import ctypes
from collections import deque

import llama_cpp

_ERROR_LEVEL = 3
recent_errors: deque[str] = deque(maxlen=20)


@llama_cpp.llama_log_callback
def _on_log(level: int, text: bytes, _user_data: ctypes.c_void_p) -> None:
    if level == _ERROR_LEVEL:
        line = text.decode("utf-8", errors="replace").strip()
        if line:
            recent_errors.append(line)


def capture_llama_log() -> None:
    """Route llama.cpp's log into `recent_errors` (call before loading a model)."""
    llama_cpp.llama_log_set(_on_log, ctypes.c_void_p(0))
