"""Installed package versions, read only when asked: `importlib.metadata` and its lookup cost
every command about 50 ms at start, when only `--version` and a few messages need them."""

from __future__ import annotations


def installed(package: str) -> str:
    """`package`'s installed version, or "unknown" (e.g. run from a source tree not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "unknown"
