"""Workarounds for Textual bugs the app runs into, each with its issue; one goes when the
Textual release pyproject.toml requires has the fix."""

from __future__ import annotations

from textual._styles_cache import StylesCache


def release_removed_widgets_lines() -> None:
    """Let the drawn lines of widgets removed from the screen be freed.

    Textual caches `StylesCache.get_inner_outer`, an instance method, with `functools.lru_cache`,
    so the cache keeps the last 1,024 widgets' `StylesCache` objects alive, removed widgets
    included, with every line each one drew (https://github.com/Textualize/textual/issues/6665).
    A streaming answer replaces blocks all the time: those lines made each frame's garbage
    collection slower as the answer grew (bench/long_answer.py: 100,000 tokens took 11.6x as
    long as 10,000; 9.5x without them). Clearing the cache loses only two cached styles."""
    clear = getattr(StylesCache.get_inner_outer, "cache_clear", None)
    if clear is not None:
        clear()
