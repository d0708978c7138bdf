"""One way to write a size: binary units (GiB, MiB, KiB) everywhere, in every view and message,
since memory (RAM, VRAM, llama.cpp's buffers) is counted that way and file sizes are compared
with it. The hub lists files in decimal GB: 42.5 GB there is 39.6 GiB here."""

from __future__ import annotations

import re

KIB, MIB, GIB = 1024, 1024**2, 1024**3
MOST = 64 * 1024 * GIB  # the largest size a setting takes: 64 TiB
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(t|tb|tib|g|gb|gib|m|mb|mib)?\s*", re.IGNORECASE)
_UNITS = {"t": 1024 * GIB, "g": GIB, "m": MIB}


def parse_size(text: str) -> int | None:
    """Bytes of a memory size written `24GiB`, `24G`, `64GB` or `24` (GiB): memory is sold in
    binary sizes written GB. None for anything else, nothing, or past 64 TiB."""
    m = _SIZE.fullmatch(text)
    size = float(m.group(1)) * _UNITS[(m.group(2) or "g")[0].lower()] if m else 0.0
    return int(size) if 0 < size <= MOST else None


def size_text(n_bytes: float) -> str:
    """`n_bytes` in the largest binary unit that keeps it at or above 1: "39.6 GiB"."""
    for unit, name in ((GIB, "GiB"), (MIB, "MiB"), (KIB, "KiB")):
        if abs(n_bytes) >= unit:
            return f"{n_bytes / unit:,.1f} {name}"
    return f"{n_bytes:,.0f} bytes"
