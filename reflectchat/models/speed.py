"""How fast a plan will run: decoding is bound by memory bandwidth, since every token reads every
weight once. Tokens/s <= 1 / (bytes on each GPU / its bandwidth + bytes in RAM / RAM
bandwidth): the cards and the CPU take their layers in turn.

A GPU's bandwidth comes from its driver (NVML: bus width x memory clock) or, failing that, from
the table below (vendors' data sheets); RAM bandwidth is measured here once per machine with a
large memory copy. The bound ignores the KV cache reads (small at short contexts) and compute
(which bounds small models on CPUs), so real speed is lower; once this machine has run a file,
`measured.py` has the real figure and the plan shows it instead.

Prompt processing is bound by compute, not bandwidth. It is estimated only from a prompt this
machine has processed with the same placement (all on GPU, split, CPU), scaled by the active
parameter counts (the work per token is about 2 x the parameters it computes with: a mixture's
active experts only).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from reflectchat.models.fit import ModelShape, Plan
from reflectchat.models.hardware import GPU

GB = 1e9
# peak memory bandwidth by device name, GB/s (the longest name that matches wins)
GPU_BANDWIDTH_GBS = {
    "H200": 4800, "H100 NVL": 3900, "H100 PCIe": 2000, "H100": 3350, "GH200": 4000,
    "A100-SXM4-80GB": 2039, "A100 80GB PCIe": 1935, "A100": 1555, "L40S": 864, "L40": 864,
    "L4": 300, "A10": 600, "A40": 696, "T4": 320, "V100": 900,
    "RTX 6000 Ada": 960, "RTX A6000": 768, "RTX A5000": 768, "RTX A4000": 448,
    "RTX 5090": 1792, "RTX 5080": 960, "RTX 5070 Ti": 896, "RTX 5070": 672,
    "RTX 4090": 1008, "RTX 4080 SUPER": 736, "RTX 4080": 717, "RTX 4070 Ti SUPER": 672,
    "RTX 4070 Ti": 504, "RTX 4070": 504, "RTX 4060 Ti": 288, "RTX 4060": 272,
    "RTX 3090 Ti": 1008, "RTX 3090": 936, "RTX 3080 Ti": 912, "RTX 3080": 760,
    "RTX 3070": 448, "RTX 3060": 360,
    "RX 7900 XTX": 960, "RX 7900 XT": 800, "RX 7800 XT": 624, "RX 6900 XT": 512,
    "MI300X": 5300, "MI250": 3277, "MI210": 1638,
    "M1 Ultra": 800, "M1 Max": 400, "M1 Pro": 200, "M1": 68,
    "M2 Ultra": 800, "M2 Max": 400, "M2 Pro": 200, "M2": 100,
    "M3 Ultra": 819, "M3 Max": 400, "M3 Pro": 150, "M3": 100,
    "M4 Max": 546, "M4 Pro": 273, "M4": 120,
}
COPY_BYTES = 256 * 1024**2
COPY_ROUNDS = 3


def gpu_bandwidth(gpu: GPU) -> float | None:
    """Bytes/s: what the driver said, else the table's figure for this name."""
    if gpu.bandwidth:
        return gpu.bandwidth
    known = matching_card(gpu.name)
    return GPU_BANDWIDTH_GBS[known] * GB if known else None


def matching_card(name: str) -> str | None:
    """The data-sheet table's name for a device name (the longest that matches)."""
    name = name.lower()
    matches = [k for k in GPU_BANDWIDTH_GBS if _has_word(name, k.lower())]
    return max(matches, key=len) if matches else None


def _has_word(name: str, key: str) -> bool:
    """`key` in `name`, not inside a longer token ("M1" is not in "M10", "L4" not in "L40")."""
    at = name.find(key)
    while at >= 0:
        end = at + len(key)
        if (at == 0 or not name[at - 1].isalnum()) and (end == len(name)
                                                        or not name[end].isalnum()):
            return True
        at = name.find(key, at + 1)
    return False


def measure_ram_bandwidth() -> float:
    """Bytes/s of a large memory copy (read + write), best of a few rounds."""
    import numpy as np

    src = np.ones(COPY_BYTES // 8)
    dst = np.empty_like(src)
    best = float("inf")
    for _ in range(COPY_ROUNDS):
        start = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - start)
    return 2 * COPY_BYTES / max(best, 1e-9)


@dataclass(frozen=True)
class Placement:
    """Where a plan's per-token weight reads happen."""
    gpu_bytes: tuple[tuple[GPU, int], ...]
    ram_bytes: int

    @property
    def kind(self) -> str:
        """"gpu", "split" or "cpu": prompt speeds compare only within one kind."""
        if not self.gpu_bytes:
            return "cpu"
        return "gpu" if self.ram_bytes == 0 else "split"


def placement(shape: ModelShape, chosen: Plan) -> Placement:
    """What one token reads on each device: every weight of a dense model; of a mixture of
    experts, the rest of each layer and the active share of its experts (expert_used_count /
    expert_count), on the GPU or in RAM where they sit."""
    output_on_gpu = any(c.output for c in chosen.cards)
    cpu_layers = range(shape.n_layer - chosen.layers_on_gpu)
    ram = sum(shape.read_bytes(il) for il in cpu_layers) + \
        (0 if output_on_gpu else shape.output_bytes)
    if shape.expert_bytes:  # experts left in RAM by the GPU layers
        ram += sum(round(shape.expert_bytes[il] * shape.expert_share)
                   for il in range(chosen.experts_in_ram) if il not in cpu_layers)
    if shape.output_tied:
        ram += shape.embd_bytes
    return Placement(tuple((card.gpu, card.read or card.weights) for card in chosen.cards), ram)


def decode_bound(where: Placement, ram_bandwidth: float | None) -> float | None:
    """Most tokens/s memory bandwidth allows; None when a bandwidth is unknown."""
    seconds = 0.0
    for gpu, size in where.gpu_bytes:
        bandwidth = gpu_bandwidth(gpu)
        if bandwidth is None:
            return None
        seconds += size / bandwidth
    if where.ram_bytes:
        if not ram_bandwidth:
            return None
        seconds += where.ram_bytes / ram_bandwidth
    return 1 / seconds if seconds > 0 else None


def prompt_estimate(params: int, known: list[tuple[int, float]]) -> float | None:
    """Prompt tokens/s for a model of `params`, from (params, tokens/s) measured here with
    the same placement: the one closest in size, scaled by the parameter ratio."""
    if params <= 0 or not known:
        return None
    other_params, speed = min(known, key=lambda k: abs(k[0] - params))
    return speed * other_params / params


def speed_text(tps: float | None, measured: bool) -> str:
    """"27.3" measured, "≤38" an estimated bound, "-" unknown."""
    if tps is None:
        return "-"
    figure = f"{tps:.1f}" if tps < 10 else f"{tps:,.0f}"
    return figure if measured else f"≤{figure}"
