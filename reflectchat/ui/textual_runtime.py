"""How the app runs Textual: the garbage collector's pace for its frames, and workarounds for
Textual bugs it meets, each with its issue (one goes when the Textual release pyproject.toml
requires has the fix)."""

from __future__ import annotations

import gc

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


def collect_garbage_less_often() -> None:
    """Let the young generation grow to 50,000 objects before a collection (CPython: 700).

    Each frame Textual draws allocates thousands of short-lived objects (strips, their caches,
    segments), so at CPython's default the collector ran hundreds of times a second, and every
    tenth of those also walked the older objects, whose number grows with the answer on screen.
    bench/long_answer.py, 100,000 tokens: 13-15 s of 47-54 s in the collector, 106-119 full
    collections; with this, 2.4-2.6 s and one, for 13 MB more peak memory (202 MB)."""
    gc.set_threshold(50_000, 10, 10)
