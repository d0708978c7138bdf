"""A machine to plan for that is not this one: `models --gpu 24GiB --gpu "RTX 3090" --ram
64GiB`, for a user deciding what to download for another box, or before buying a card.

A card is a size (`24GiB`), a name from the data-sheet table (`RTX 4090`: its bandwidth, and
its memory where it is sold in one size) or both (`A100:40GiB`). Memory is sold in binary
sizes written GB, so `24GB`, `24G` and `24GiB` are all 24 GiB. What is not given is this
machine's: its CPU, and its RAM or GPUs when only the other is named. RAM bandwidth, which the
plan cannot know for another box, is this machine's as measured here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from reflectchat.engine.errors import EngineError
from reflectchat.models.hardware import GPU, Hardware, ram_reserve
from reflectchat.models.speed import GB, GPU_BANDWIDTH_GBS, matching_card
from reflectchat.sizes import GIB, parse_size
from reflectchat.untrusted import visible

# cards sold with one memory size, GiB (vendors' data sheets)
GPU_MEMORY_GIB = {
    "H200": 141, "H100 NVL": 94, "H100 PCIe": 80, "H100": 80, "GH200": 96, "L40S": 48,
    "L40": 48, "L4": 24, "A10": 24, "A40": 48, "T4": 16, "RTX 6000 Ada": 48, "RTX A6000": 48,
    "RTX A5000": 24, "RTX A4000": 16, "RTX 5090": 32, "RTX 5080": 16, "RTX 5070 Ti": 16,
    "RTX 5070": 12, "RTX 4090": 24, "RTX 4080 SUPER": 16, "RTX 4080": 16,
    "RTX 4070 Ti SUPER": 16, "RTX 4070 Ti": 12, "RTX 4070": 12, "RTX 4060": 8,
    "RTX 3090 Ti": 24, "RTX 3090": 24, "RTX 3080 Ti": 12, "RTX 3070": 8, "RX 7900 XTX": 24,
    "RX 7900 XT": 20, "RX 7800 XT": 16, "RX 6900 XT": 16, "MI300X": 192, "MI250": 128,
    "MI210": 64,
}
AMD_NAMES = ("RX ", "MI")


def size_of(text: str, what: str) -> int:
    """Bytes of a memory size like `24GiB`, `24G`, `64GB` or `24` (GiB)."""
    size = parse_size(text)
    if size is None:
        raise EngineError(f"{what} takes a memory size like 24GiB (up to 64 TiB), "
                          f"not {visible(text)!r}")
    return size


def card(text: str) -> GPU:
    """One `--gpu`: SIZE, NAME or NAME:SIZE."""
    name, _, size = text.rpartition(":") if ":" in text else ("", "", text)
    if not name and not size.strip()[:1].isdigit():  # a name alone
        name, size = text, ""
    name = name.strip()
    known = matching_card(name) if name else None
    if name and known is None:
        raise EngineError(f"--gpu: {visible(name)!r} is not in the data-sheet table; give its "
                          "memory instead (--gpu 24GiB), or a card such as RTX 4090 or H100")
    if size:
        total = size_of(size, "--gpu")
    elif known in GPU_MEMORY_GIB:
        total = GPU_MEMORY_GIB[known] * GIB
    else:
        raise EngineError(f"--gpu: the {known} comes in more than one memory size; say which, "
                          f"as in --gpu '{known}:SIZE' (SIZE like 40GiB)")
    vendor = "amd" if known and known.startswith(AMD_NAMES) else "nvidia"
    bandwidth = GPU_BANDWIDTH_GBS[known] * GB if known else None
    label = known or "a GPU"
    return GPU(f"{label} of {total / GIB:g} GiB", vendor, total, total, bandwidth=bandwidth)


def planned_for(here: Hardware, gpus: Sequence[str], ram: str | None) -> Hardware:
    """`here` with the GPUs and RAM a user named in their place."""
    hw = here
    if gpus:
        cards = [card(text) for text in gpus]
        hw = replace(hw, gpus=cards, build_offloads=True,
                     build_backends=sorted({"rocm" if c.vendor == "amd" else "cuda"
                                            for c in cards}))
    if ram is not None:
        total = size_of(ram, "--ram")
        hw = replace(hw, ram_total_bytes=total, ram_available_bytes=total,
                     ram_reserve_bytes=ram_reserve(total))
    return hw
