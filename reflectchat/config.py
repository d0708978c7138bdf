"""The user's config file, `config.toml` in the platformdirs config dir.

    [ui]                 read and written by the app: pane toggles and theme, kept across restarts
    show_thinking = true
    show_reflection = true
    output_only = false
    raw_view = false
    show_sessions = false
    theme = "reflect-dark"

    [endpoints.NAME]     remote servers, written by the user: see endpoints.py

    [models."NAME"]      per model (a catalog id or a GGUF's file name), written by the user:
    think_tags = "<reason>,</reason>"     or  format = "harmony"

User theme files live beside it, in `themes/`. A config file that cannot be read gives a warning
and the defaults, and is never overwritten: nothing the user wrote is lost.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import tomli_w

from reflectchat.paths import config_file

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEFAULT_THEME = "reflect-dark"


@dataclass(frozen=True)
class UIConfig:
    show_thinking: bool = True
    show_reflection: bool = True
    output_only: bool = False  # only the output pane, whatever the other toggles say
    raw_view: bool = False  # the exact model text, tags included, instead of the panes
    show_sessions: bool = False  # the sessions sidebar
    theme: str = DEFAULT_THEME


class ConfigFile:
    """Reads the config once; `save_ui` rewrites only the [ui] table."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or config_file()
        self.warnings: list[str] = []
        self._data: dict[str, Any] = {}
        self._writable = True
        try:
            self._data = tomllib.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            pass
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            self._writable = False
            self.warnings.append(f"{self.path}: {exc}; using default settings and leaving the "
                                 "file untouched until it is fixed")

    def ui(self) -> UIConfig:
        table = self._data.get("ui", {})
        config = UIConfig()
        if not isinstance(table, dict):
            self.warnings.append(f"{self.path}: [ui] must be a table; using defaults")
            return config
        for f in fields(UIConfig):
            if f.name not in table:
                continue
            value, default = table[f.name], getattr(config, f.name)
            if type(value) is not type(default):
                self.warnings.append(f"{self.path}: ui.{f.name} must be "
                                     f"{type(default).__name__}, not {value!r}; using {default!r}")
                continue
            config = replace(config, **{f.name: value})
        return config

    def endpoint_tables(self) -> dict[str, object]:
        """The `[endpoints.NAME]` tables (checked when one is used: endpoints.py)."""
        tables = self._data.get("endpoints", {})
        return tables if isinstance(tables, dict) else {}

    def model_table(self, *names: str) -> tuple[str, dict[str, object]]:
        """The first `[models."NAME"]` table among `names` (a catalog id, a GGUF's file name),
        with the name it was found by; ("", {}) for none. Its keys are checked where read."""
        tables = self._data.get("models", {})
        if not isinstance(tables, dict):
            return "", {}
        for name in names:
            table = tables.get(name)
            if isinstance(table, dict):
                return name, table
        return "", {}

    def save_ui(self, ui: UIConfig) -> None:
        """Write atomically, so a crash mid-write leaves the previous file."""
        if not self._writable:
            return
        self._data["ui"] = {f.name: getattr(ui, f.name) for f in fields(UIConfig)}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".toml.tmp")
        tmp.write_text(tomli_w.dumps(self._data), encoding="utf-8")
        os.replace(tmp, self.path)
