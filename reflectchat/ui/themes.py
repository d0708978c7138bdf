"""Themes as data: TOML files in the package's `themes/` and the user's config `themes/` folder.

A file holds the fields of Textual's `Theme` (name, primary, ..., dark). Files that cannot be
used are reported by name with the reason, and skipped; the app then keeps the default theme.
"""

from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from textual.color import Color, ColorParseError
from textual.theme import Theme

from reflectchat.paths import builtin_themes_dir

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

_COLORS = ("primary", "secondary", "warning", "error", "success", "accent", "foreground",
           "background", "surface", "panel", "boost")
_NUMBERS = ("luminosity_spread", "text_alpha")
_CSS_BREAK = re.compile(r"[;{}\n\r]")  # would end the value and write CSS of its own
# Textual's own theme list (Ctrl+P, "Change theme") reads names as markup: a name is plain
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.+-]{0,63}")
_KNOWN = {f.name for f in fields(Theme)}


@dataclass
class LoadedThemes:
    themes: dict[str, Theme]
    problems: list[str]


def load_themes(user_dir: Path | None) -> LoadedThemes:
    """Built-in themes first, then the user's, which replace a built-in of the same name."""
    loaded = LoadedThemes({}, [])
    builtin = sorted((f for f in builtin_themes_dir().iterdir()
                      if f.name.endswith(".toml")), key=lambda f: f.name)
    sources: list[tuple[str, str | None]] = [(f.name, _read(f)) for f in builtin]
    if user_dir is not None and user_dir.is_dir():
        sources += [(str(p), _read(p)) for p in sorted(user_dir.glob("*.toml"))]
    for name, text in sources:
        if text is None:
            loaded.problems.append(f"theme file {name}: cannot be read")
            continue
        try:
            theme = parse_theme(text)
        except ValueError as exc:
            loaded.problems.append(f"theme file {name}: {exc}")
            continue
        loaded.themes[theme.name] = theme
    return loaded


def _read(source: Any) -> str | None:
    try:
        return str(source.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return None


def parse_theme(text: str) -> Theme:
    """A Theme from TOML text; ValueError says which key is wrong and why."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"not valid TOML ({exc})") from None
    unknown = sorted(set(data) - _KNOWN)
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r}; theme keys are "
                         f"name, dark, {', '.join(_COLORS)}, {', '.join(_NUMBERS)}, variables")
    for key in ("name", "primary"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise ValueError(f"{key!r} is required and must be a string")
    if not _NAME.fullmatch(data["name"]):
        raise ValueError(f"name = {data['name']!r}: a theme's name is letters, digits, spaces "
                         "and . _ + - (at most 64), starting with a letter or digit")
    for key in _COLORS:
        if key in data:
            try:
                Color.parse(data[key])
            except (ColorParseError, TypeError):
                raise ValueError(f"{key} = {data[key]!r} is not a color") from None
    if "dark" in data and not isinstance(data["dark"], bool):
        raise ValueError("'dark' must be true or false")
    for key in _NUMBERS:
        value = data.get(key, 0.0)
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value) or not 0 <= value <= 1:
            raise ValueError(f"{key!r} must be a number from 0 to 1, not {value!r}")
    if "variables" in data and not (
        isinstance(data["variables"], dict)
        and all(isinstance(v, str) and not _CSS_BREAK.search(v)
                for v in data["variables"].values())
    ):
        raise ValueError("'variables' must be a table of strings, each one CSS value (no ';', "
                         "braces or line breaks)")
    return Theme(**data)
