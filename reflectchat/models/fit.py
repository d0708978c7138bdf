"""The memory plan: how a model, quant and context fit this machine's GPUs and RAM.

The sizes follow what llama.cpp allocates (checked against the buffer sizes llama.cpp logs
when loading generated models: tests/test_fit.py):
- weights: every tensor's bytes (from the GGUF header when the file is at hand, else
  estimated from the catalog's architecture and file size); llama.cpp offloads the last
  `n_gpu_layers` repeating layers, and the output layer too once all of them are on the GPU;
- KV cache: per layer, context rounded up to 256 x KV heads x (key + value head size) x the
  cache type's bytes per element, on the GPU for offloaded layers;
- compute buffer: the largest of the attention (without flash attention), feed-forward and
  output terms for a 512-token micro-batch; on the GPU when any layer is offloaded;
- output buffer: the logits, vocabulary x 4 bytes;
- a safety margin of 1 GiB per GPU and 1 GiB of RAM.
With several GPUs, llama.cpp spreads the offloaded layers over them by `tensor_split` (by
default each card's free memory): layer i of the `a` offloaded ones goes to the first card whose
running share of the split exceeds i / a. Each card must hold its layers, their KV cache and a
compute buffer.
Estimators err; the loader retries with fewer GPU layers when a load fails for memory.
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import Enum
from pathlib import Path

from reflectchat.engine.cpu import repack_default, repacked_bytes, repacked_types
from reflectchat.engine.gguf_header import Header, HeaderError, read_local
from reflectchat.engine.placement import EXPERTS
from reflectchat.models.catalog import Arch
from reflectchat.models.hardware import GPU, Hardware
from reflectchat.sizes import GIB

_EXPERTS = re.compile(EXPERTS)
CTX_ALIGN = 256
N_UBATCH = 512
GPU_MARGIN = GIB
RAM_MARGIN = GIB
# bytes per element of each KV cache type (block types: block bytes / 32 elements)
KV_TYPE_BYTES = {"f32": 4.0, "f16": 2.0, "q8_0": 34 / 32, "q5_1": 24 / 32, "q5_0": 22 / 32,
                 "q4_1": 20 / 32, "q4_0": 18 / 32, "iq4_nl": 18 / 32}


@dataclass(frozen=True)
class ModelShape:
    n_layer: int
    n_embd: int
    n_head: int
    n_head_kv: int
    head_dim_k: int
    head_dim_v: int
    n_ff: int
    n_vocab: int
    layer_bytes: tuple[int, ...]  # each repeating layer's weights
    output_bytes: int  # output.weight and output_norm: the "output layer"
    embd_bytes: int  # token_embd: stays in RAM (memory-mapped)
    exact: bool  # read from a GGUF header; False: estimated from the catalog
    params: int = 0  # parameters (tensor elements)
    output_tied: bool = False  # no output.weight: the output reuses token_embd
    # Of those, what llama.cpp copies into repacked buffers on this CPU when repacking is on
    # (engine/cpu.py), per layer and for the output layer: a second copy beside the mapped file.
    repack_layer_bytes: tuple[int, ...] = ()
    repack_output_bytes: int = 0
    # A mixture of experts: each layer's expert tensors (of layer_bytes), how many experts a
    # layer has and how many a token uses (only their share of the expert bytes is read).
    expert_bytes: tuple[int, ...] = ()
    experts: int = 0
    experts_used: int = 0

    @property
    def expert_share(self) -> float:
        """The share of a layer's expert bytes one token reads."""
        return self.experts_used / self.experts if self.experts else 1.0

    @property
    def active_params(self) -> int:
        """The parameters one token computes with: a mixture's active experts only (its
        share of the expert bytes, taken as its share of the parameters), all of a dense
        model's. Prompt processing is compute: it scales with these, not with `params`."""
        if not self.expert_bytes or not self.weights_bytes:
            return self.params
        idle = sum(self.expert_bytes) * (1 - self.expert_share) / self.weights_bytes
        return round(self.params * (1 - idle))

    def read_bytes(self, layer: int, experts_here: bool = True) -> int:
        """What one token reads of `layer`'s weights where they sit: all of a dense layer,
        the active experts' share of a mixture's (`experts_here`: its experts too)."""
        experts = self.expert_bytes[layer] if self.expert_bytes else 0
        return self.layer_bytes[layer] - experts + \
            (round(experts * self.expert_share) if experts_here else 0)

    def repack_bytes(self, cpu_layers: int, output_on_cpu: bool) -> int:
        return sum(self.repack_layer_bytes[:cpu_layers]) + \
            (self.repack_output_bytes if output_on_cpu else 0)

    @property
    def weights_bytes(self) -> int:
        return sum(self.layer_bytes) + self.output_bytes + self.embd_bytes


def shape_from_gguf(paths: Sequence[Path]) -> ModelShape:
    """Exact tensor sizes from a GGUF's header (all shards of a split model)."""
    return shape_from_headers([read_local(p) for p in paths], paths[0].name)


def shape_from_headers(headers: Sequence[Header], name: str) -> ModelShape:
    """Exact sizes from the headers of every shard (read from disk, or from the hub)."""
    meta = headers[0].metadata
    arch = meta.get("general.architecture")

    def number(key: str, default: int | None = None) -> int:
        value = meta.get(f"{arch}.{key}", default)
        if value is None:
            raise HeaderError(f"{name} has no {arch}.{key}")
        return int(value)

    n_layer, n_embd, n_head = (number("block_count"), number("embedding_length"),
                               number("attention.head_count"))
    head_k = number("attention.key_length", n_embd // n_head)
    layers, repacked, experts = [0] * n_layer, [0] * n_layer, [0] * n_layer
    output = embd = repacked_output = tied_copy = 0
    repackable = repacked_types()
    for header in headers:
        for tensor, size in header.tensors.items():
            kind, rows, cols = header.layouts.get(tensor, ("", 0, 0))
            copied = repacked_bytes(repackable, kind, rows, cols, size)
            if tensor.startswith("blk."):
                layer = int(tensor.split(".")[1])
                layers[layer] += size
                repacked[layer] += copied
                if _EXPERTS.search(tensor):
                    experts[layer] += size
            elif tensor == "token_embd.weight":  # looked up by row: never repacked
                embd += size
                tied_copy = copied  # counted below if the output reuses it
            else:
                output += size
                repacked_output += copied
    n_vocab = int(meta.get("tokenizer.ggml.tokens") or 0)  # the array's length
    tied = not any("output.weight" in h.tensors for h in headers)
    if tied:  # llama.cpp gives the output layer its own (repacked) copy of token_embd
        repacked_output += tied_copy
    moe = any(experts)
    # the feed-forward a token runs through: a mixture's experts in use, each of its size (in
    # the header, else in the shape of an expert tensor: Mixtral's files name no such key)
    if moe:
        expert_ff = meta.get(f"{arch}.expert_feed_forward_length") or _expert_rows(headers) \
            or number("feed_forward_length")
        n_ff = int(expert_ff) * number("expert_used_count")
    else:
        n_ff = number("feed_forward_length")
    return ModelShape(n_layer, n_embd, n_head, number("attention.head_count_kv", n_head),
                      head_k, number("attention.value_length", head_k), n_ff, n_vocab,
                      tuple(layers), output, embd, True,
                      sum(h.params for h in headers), tied, tuple(repacked), repacked_output,
                      tuple(experts) if moe else (), number("expert_count", 0) if moe else 0,
                      number("expert_used_count", 0) if moe else 0)


def _expert_rows(headers: Sequence[Header]) -> int:
    """The feed-forward size of one expert: the rows of an `ffn_up_exps` tensor (its shape is
    n_embd x n_ff x n_expert); 0 if the file has none."""
    for header in headers:
        for tensor, (_, rows, _) in header.layouts.items():
            if ".ffn_up_exps." in tensor:
                return rows
    return 0


def shape_from_catalog(arch: Arch, file_bytes: int) -> ModelShape:
    """Estimated sizes from the architecture: the file's bytes spread over the parameters
    (each layer's attention and feed-forward, the embedding, the output layer)."""
    n_ff = arch.ffn
    per_layer = layer_params(arch)
    vocab_params = arch.vocab * arch.hidden
    params = arch_params(arch)
    bytes_per_param = file_bytes / params
    layer = int(per_layer * bytes_per_param)
    side = int(vocab_params * bytes_per_param)
    experts = int(3 * arch.hidden * arch.experts * arch.expert_ffn * bytes_per_param)
    used = arch.ffn // arch.expert_ffn if arch.experts else 0
    return ModelShape(arch.layers, arch.hidden, arch.heads, arch.kv_heads, arch.head_dim,
                      arch.head_dim, n_ff, arch.vocab, (layer,) * arch.layers, side, side, False,
                      params, expert_bytes=(experts,) * arch.layers if arch.experts else (),
                      experts=arch.experts, experts_used=used)


def layer_params(arch: Arch) -> int:
    """Parameters of one layer: its attention and its gated feed-forward (of a mixture of
    experts: every expert's; norms and the router are negligible)."""
    kv = arch.kv_heads * arch.head_dim
    ffn = arch.experts * arch.expert_ffn if arch.experts else arch.ffn
    return arch.hidden * (2 * arch.heads * arch.head_dim + 2 * kv) + 3 * arch.hidden * ffn


def arch_params(arch: Arch) -> int:
    """Parameters of a transformer of this shape: its layers, the token embedding and the
    output layer."""
    return arch.layers * layer_params(arch) + 2 * arch.vocab * arch.hidden


def context_rounded(n_ctx: int) -> int:
    return math.ceil(n_ctx / CTX_ALIGN) * CTX_ALIGN


def kv_bytes_per_layer(shape: ModelShape, n_ctx: int, type_k: str = "f16",
                       type_v: str = "f16") -> int:
    per_token = shape.n_head_kv * (shape.head_dim_k * KV_TYPE_BYTES[type_k]
                                   + shape.head_dim_v * KV_TYPE_BYTES[type_v])
    return int(context_rounded(n_ctx) * per_token)


def compute_bytes(shape: ModelShape, n_ctx: int, flash_attn: bool = False) -> int:
    c, ub, e = context_rounded(n_ctx), min(N_UBATCH, context_rounded(n_ctx)), shape.n_embd
    e_kv = shape.n_head_kv * shape.head_dim_k
    ffn = ub * (3 * shape.n_ff + 4 * e) * 4 + c * ub * (2 if flash_attn else 4)
    output = ub * (shape.n_vocab + (3 if flash_attn else 4) * e) * 4
    attention = 0 if flash_attn else ub * (c * (shape.n_head + 1) + 5 * e + 2 * e_kv) * 4
    return max(ffn, output, attention)


class Verdict(str, Enum):
    FULL_GPU = "full GPU"
    PARTIAL = "partial offload"
    CPU_ONLY = "CPU only"
    NO_FIT = "does not fit"


@dataclass(frozen=True)
class CardUse:
    """What one GPU holds under a plan."""
    gpu: GPU
    layers: int  # repeating layers (the output layer is counted in `output`)
    output: bool
    weights: int  # its layers' weights and the output layer's
    bytes: int  # weights, KV cache and compute buffer, margin included
    read: int = 0  # what one token reads of its weights (a mixture: the active experts)


@dataclass(frozen=True)
class Plan:
    n_gpu_layers: int  # as llama.cpp counts: n_layer + 1 puts the output layer there too
    n_layer: int
    verdict: Verdict
    gpu_bytes: int  # needed on the GPUs, margin included
    ram_bytes: int  # needed in RAM, margin included
    kv_bytes: int
    compute_bytes: int
    cards: tuple[CardUse, ...] = ()  # each GPU that holds layers
    capped_at: int | None = None  # a load with this many GPU layers failed for memory
    repack: bool = False  # the CPU layers' weights are repacked (their copies counted in RAM)
    experts_in_ram: int = 0  # a mixture of experts: the first N layers' experts stay in RAM

    @property
    def layers_on_gpu(self) -> int:
        return min(self.n_gpu_layers, self.n_layer)

    @property
    def label(self) -> str:
        if self.experts_in_ram:
            return f"experts of {self.experts_in_ram}/{self.n_layer} layers in RAM"
        if self.verdict is Verdict.PARTIAL:
            return f"partial: {self.layers_on_gpu} of {self.n_layer} layers on the GPU"
        return self.verdict.value

    @property
    def short_label(self) -> str:
        """The verdict in at most 14 characters, for tables: "partial 41/81"."""
        if self.experts_in_ram:
            return f"MoE {self.experts_in_ram}/{self.n_layer} RAM"
        if self.verdict is Verdict.PARTIAL:
            return f"partial {self.n_gpu_layers}/{self.n_layer + 1}"
        return self.verdict.value


def layer_cards(n_layer: int, n_gpu_layers: int, split: Sequence[float]) -> list[int]:
    """The card each GPU slot goes to, as llama.cpp assigns them: the offloaded repeating
    layers, then the output layer when `n_gpu_layers` is n_layer + 1."""
    total = sum(split)
    if n_gpu_layers <= 0 or total <= 0:
        return []
    running, bounds = 0.0, []
    for share in split:
        running += share
        bounds.append(running / total)
    active = min(n_gpu_layers, n_layer + 1)
    slots = range(max(n_layer - n_gpu_layers, 0), n_layer + (1 if n_gpu_layers > n_layer else 0))
    start = slots.start
    return [min(bisect.bisect_right(bounds, (il - start) / active), len(split) - 1)
            for il in slots]


def plan(shape: ModelShape, hw: Hardware, n_ctx: int, type_k: str = "f16",
         type_v: str = "f16", flash_attn: bool = False,
         tensor_split: Sequence[float] | None = None,
         max_gpu_layers: int | None = None, repack: bool | None = None) -> Plan:
    """The most layers this machine can hold on its GPUs (each card by its share of the
    split), and whether the rest fits in RAM. `max_gpu_layers`: start below a count that
    failed for memory before. `repack`: the CPU layers' repacked copies count too (llama.cpp
    allocates them beside the mapped file; the file's pages of those tensors then sit unused
    in the page cache, which the kernel may reclaim, so this errs on the safe side). None:
    repacked where this CPU gains from it (`cpu.repack_default`) and the copies fit without
    taking a layer off the GPU."""
    args = (shape, hw, n_ctx, type_k, type_v, flash_attn, tensor_split)
    if repack is None:
        without = plan(*args, max_gpu_layers=max_gpu_layers, repack=False)
        if not repack_default() or without.verdict is Verdict.NO_FIT:
            return without
        copied = plan(*args, max_gpu_layers=without.n_gpu_layers, repack=True)
        fits = copied.verdict is not Verdict.NO_FIT and \
            copied.n_gpu_layers == without.n_gpu_layers
        return replace(copied, capped_at=max_gpu_layers) if fits else without
    kv_layer = kv_bytes_per_layer(shape, n_ctx, type_k, type_v)
    compute = compute_bytes(shape, n_ctx, flash_attn)
    logits = shape.n_vocab * 4
    gpus = list(hw.gpus) if hw.build_offloads else []
    shares = list(tensor_split) if tensor_split else [float(g.free_bytes) for g in gpus]
    shares = (shares + [0.0] * len(gpus))[:len(gpus)]  # as many shares as cards
    used = [(g, share) for g, share in zip(gpus, shares, strict=True)
            if share > 0 and g.free_bytes > GPU_MARGIN]
    gpus, split = [g for g, _ in used], [share for _, share in used]
    unified = any(g.unified for g in gpus)
    n = shape.n_layer
    top = n + 1 if gpus else 0
    if max_gpu_layers is not None:
        top = min(top, max(max_gpu_layers, 0))
    if shape.expert_bytes and top > n:
        # every layer on the GPU, and the experts of as few layers as needed in RAM (as
        # llama.cpp's --n-cpu-moe keeps them: the first layers')
        for moved in range(n + 1):
            cards = _cards(shape, gpus, split, n + 1, kv_layer, compute, moved)
            gpu = sum(c.bytes for c in cards)
            ram = (sum(shape.expert_bytes[:moved]) + shape.embd_bytes + logits + RAM_MARGIN
                   + (sum(min(r, e) for r, e in zip(shape.repack_layer_bytes[:moved],
                                                      shape.expert_bytes[:moved],
                                                      strict=False)) if repack else 0))
            if unified:
                ram += gpu - GPU_MARGIN * len(cards)
            if _fits(cards, ram, hw):
                if moved == 0:
                    break  # the experts fit on the GPU too: the plain plan below says so
                return Plan(n + 1, n, Verdict.PARTIAL, gpu, ram, kv_layer * n, compute,
                            tuple(cards), max_gpu_layers, repack, moved)
    for ngl in range(top, -1, -1):
        on_gpu = min(ngl, n)
        cards = _cards(shape, gpus, split, ngl, kv_layer, compute)
        gpu = sum(c.bytes for c in cards)
        ram = (sum(shape.layer_bytes[:n - on_gpu]) + kv_layer * (n - on_gpu) + shape.embd_bytes
               + (0 if ngl > n else shape.output_bytes) + logits
               + (0 if ngl else compute) + RAM_MARGIN
               + (shape.repack_bytes(n - on_gpu, ngl <= n) if repack else 0))
        if unified:  # the GPU's memory is the RAM: both must fit in it together
            ram += gpu - GPU_MARGIN * len(cards)
        if all(c.bytes <= c.gpu.free_bytes for c in cards) and ram <= hw.ram_plan_bytes:
            verdict = (Verdict.FULL_GPU if ngl > n else Verdict.PARTIAL if ngl
                       else Verdict.CPU_ONLY)
            return Plan(ngl, n, verdict, gpu, ram, kv_layer * n, compute, tuple(cards),
                        max_gpu_layers, repack)
    ram_all = shape.weights_bytes + kv_layer * n + logits + compute + RAM_MARGIN + \
        (shape.repack_bytes(n, True) if repack else 0)
    return Plan(0, n, Verdict.NO_FIT, 0, ram_all, kv_layer * n, compute, (), max_gpu_layers,
                repack)


def _fits(cards: list[CardUse], ram: int, hw: Hardware) -> bool:
    return all(c.bytes <= c.gpu.free_bytes for c in cards) and ram <= hw.ram_plan_bytes


def _cards(shape: ModelShape, gpus: list[GPU], split: list[float], ngl: int, kv_layer: int,
           compute: int, experts_in_ram: int = 0) -> list[CardUse]:
    """What each card holds with `ngl` GPU layers, the experts of the first
    `experts_in_ram` layers left in RAM."""
    n = shape.n_layer
    assigned = layer_cards(n, ngl, split)
    first = max(n - ngl, 0)
    cards = []
    for index, gpu in enumerate(gpus):
        slots = [first + k for k, card in enumerate(assigned) if card == index]
        layers = [il for il in slots if il < n]
        if not slots:
            continue
        output = n in slots
        kept = [il >= experts_in_ram for il in layers]
        weights = sum(shape.layer_bytes[il] - (0 if here else shape.expert_bytes[il])
                      for il, here in zip(layers, kept, strict=True)) + \
            (shape.output_bytes if output else 0)
        read = sum(shape.read_bytes(il, here) for il, here in zip(layers, kept, strict=True)) + \
            (shape.output_bytes if output else 0)
        size = weights + kv_layer * len(layers) + compute + GPU_MARGIN
        cards.append(CardUse(gpu, len(layers), output, weights, size, read))
    return cards
