"""Every place reflectchat reads or writes, in one module.

| what                          | where (Linux; platformdirs picks the others)      |
|-------------------------------|---------------------------------------------------|
| settings, user themes         | `~/.config/reflectchat/config.toml`, `themes/`    |
| session history               | `~/.local/share/reflectchat/sessions.db`          |
| measured loads and speeds     | `~/.local/share/reflectchat/measurements.db`      |
| Markdown exports from the app | `~/.local/share/reflectchat/exports/`             |
| demo model, hub header cache  | `~/.cache/reflectchat/`, `headers/`               |
| model catalog, built-in themes| package data: `models.toml`, `themes/`            |

Downloaded weights are not ours: they live in the shared Hugging Face cache (`models/pull.py`).
"""

from __future__ import annotations

from pathlib import Path

from platformdirs import user_cache_path, user_config_path, user_data_path

APP = "reflectchat"
_PACKAGE = Path(__file__).parent


def config_dir() -> Path:
    return user_config_path(APP)


def config_file() -> Path:
    return config_dir() / "config.toml"


def user_themes_dir() -> Path:
    return config_dir() / "themes"


def data_dir() -> Path:
    return user_data_path(APP)


def store_file() -> Path:
    return data_dir() / "sessions.db"


def measurements_file() -> Path:
    return data_dir() / "measurements.db"


def exports_dir() -> Path:
    return data_dir() / "exports"


def cache_dir() -> Path:
    return user_cache_path(APP)


def context_state_file(session_id: int) -> Path:
    """A session's saved model context (engine/saved_context.py): a cache, gone with it."""
    return cache_dir() / "contexts" / f"session-{session_id}.state"


def header_cache_dir() -> Path:
    return cache_dir() / "headers"


def _package_data(name: str) -> Path:
    """A data file the build copies into the package from the project root; in a source
    checkout (an editable install) it is read where it lies, at the root."""
    bundled = _PACKAGE / name
    return bundled if bundled.exists() else _PACKAGE.parent / name


def catalog_file() -> Path:
    return _package_data("models.toml")


def builtin_themes_dir() -> Path:
    return _package_data("themes")
