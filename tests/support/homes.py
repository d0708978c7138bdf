"""A home of its own for processes a module-scoped fixture runs once (the tests' own homes are
set by `isolated_dirs` in conftest.py, which such fixtures run before)."""

from __future__ import annotations

from pathlib import Path


def home_env(home: Path) -> dict[str, str]:
    """The variables that put reflectchat's data, cache and config under `home`, offline."""
    return {"HOME": str(home), "HF_HUB_OFFLINE": "1",
            **{f"XDG_{kind}_HOME": str(home / kind.lower()) for kind in ("DATA", "CACHE",
                                                                        "CONFIG")}}
