"""One way to write a size: binary units (GiB, MiB, KiB) everywhere, in every view and message,
since memory (RAM, VRAM, llama.cpp's buffers) is counted that way and file sizes are compared
with it. The hub lists files in decimal GB: 42.5 GB there is 39.6 GiB here."""

from __future__ import annotations

KIB, MIB, GIB = 1024, 1024**2, 1024**3


def size_text(n_bytes: float) -> str:
    """`n_bytes` in the largest binary unit that keeps it at or above 1: "39.6 GiB"."""
    for unit, name in ((GIB, "GiB"), (MIB, "MiB"), (KIB, "KiB")):
        if abs(n_bytes) >= unit:
            return f"{n_bytes / unit:,.1f} {name}"
    return f"{n_bytes:,.0f} bytes"
