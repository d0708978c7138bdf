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
    answer_tags = "<answer>,</answer>"   (with think_tags: the answer's wrapper)

User theme files live beside it, in `themes/`. A config file that cannot be read gives a warning
and the defaults, and is never overwritten: nothing the user wrote is lost.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import tomli_w

from reflectchat.paths import config_file
from reflectchat.sizes import GIB, parse_size, size_text

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

DEFAULT_THEME = "reflect-dark"
DEFAULT_CONTEXT_BUDGET = 4 * GIB  # saved contexts (engine/saved_context.py), all sessions


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

    def context_budget(self) -> int:
        """`[contexts] budget`: the disk saved contexts may take (default 4 GiB)."""
        table = self._data.get("contexts", {})
        value = table.get("budget") if isinstance(table, dict) else None
        if value is None:
            return DEFAULT_CONTEXT_BUDGET
        size = parse_size(value) if isinstance(value, str) else None
        if size is None:
            self.warnings.append(f"{self.path}: contexts.budget must be a size like \"4GiB\", "
                                 f"not {value!r}; using 4 GiB")
            return DEFAULT_CONTEXT_BUDGET
        return size

    def endpoint_tables(self) -> dict[str, object]:
        """The `[endpoints.NAME]` tables (checked when one is used: endpoints.py)."""
        tables = self._data.get("endpoints", {})
        return tables if isinstance(tables, dict) else {}

    def model_tables(self) -> dict[str, dict[str, object]]:
        """Every `[models."NAME"]` table by its name."""
        tables = self._data.get("models", {})
        return {k: v for k, v in tables.items() if isinstance(v, dict)} \
            if isinstance(tables, dict) else {}

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
        """Write the [ui] table (`save_table`)."""
        self.save_table("ui", {f.name: getattr(ui, f.name) for f in fields(UIConfig)})

    def save_context_budget(self, budget: int) -> None:
        """`[contexts] budget`, written as the size it is."""
        self.save_table("contexts", {"budget": size_text(budget).replace(" ", "")
                                     .replace(",", "")})

    def save_table(self, name: str, table: dict[str, object]) -> None:
        """Write one table into the file as it is on disk now (another app, or the user,
        may have changed the rest since it was read), atomically: a temporary file of this
        process's own, then a rename, so a crash or a second app saving at once leaves a whole
        file with every table."""
        if not self._writable:
            return
        try:
            current = tomllib.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            current = {}
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            return  # damaged since it was read: leave it for the user, as at start-up
        current[name] = table
        self._data = current
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".config-", suffix=".toml", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as tmp:
                tmp.write(tomli_w.dumps(current))
            os.replace(name, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(name)
            raise
