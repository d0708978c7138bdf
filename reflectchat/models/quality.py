"""What a quant costs the model: bits per weight, and the floor below which quality drops.

Bits per weight are the file's bytes x 8 over the model's parameters, so they count what the
file really holds (the mixed types of a K-quant, the embedding and output layers).

The floors come from llama.cpp's own perplexity measurements (docs/model-advice.md has the
figures and sources): on Llama 2 70B, Q3_K_S (3.5 bpw) costs +7.9% perplexity over fp16 and
Q2_K (3.0-3.4 bpw) +8.8%, against +1.2% for Q4_K_M; on 7B models the loss starts earlier,
Q3_K_S (3.5 bpw) costs +0.55 perplexity against +0.25 for Q3_K_M (3.9 bpw). Large models
tolerate fewer bits, so the floor depends on the parameter count.
"""

from __future__ import annotations

LARGE_FROM = 30e9  # parameters: the 70B-class floor applies from here
FLOOR_LARGE = 3.0  # bits per weight
FLOOR_SMALL = 3.6


def bits_per_weight(file_bytes: int, params: int) -> float | None:
    return file_bytes * 8 / params if params > 0 else None


def quality_floor(params: int) -> float:
    return FLOOR_LARGE if params >= LARGE_FROM else FLOOR_SMALL


def loses_quality(file_bytes: int, params: int) -> bool:
    """Below the floor: the quant is marked "quality loss" and not recommended while a better
    option runs."""
    bpw = bits_per_weight(file_bytes, params)
    return bpw is not None and bpw < quality_floor(params)


def params_text(params: int) -> str:
    """"70.6B", "8.0B", "268M"."""
    return f"{params / 1e9:.1f}B" if params >= 1e9 else f"{params / 1e6:.0f}M"
