"""The memory plan: how a model, quant and context fit this machine's GPUs and RAM.

The sizes follow what llama.cpp allocates (DOMAIN.md §4, checked against the buffer sizes
llama.cpp logs when loading generated models: tests/test_fit.py):
- weights: every tensor's bytes (from the GGUF header when the file is at hand, else
  estimated from the catalog's architecture and file size); llama.cpp offloads the last
  `n_gpu_layers` repeating layers, and the output layer too once all of them are on the GPU;
- KV cache: per layer, context rounded up to 256 x KV heads x (key + value head size) x the
  cache type's bytes per element, on the GPU for offloaded layers;
- compute buffer: the largest of the attention (without flash attention), feed-forward and
  output terms for a 512-token micro-batch; on the GPU when any layer is offloaded;
- output buffer: the logits, vocabulary x 4 bytes;
- a safety margin of 1 GiB per GPU and 1 GiB of RAM.
Estimators err; the loader retries with fewer GPU layers when a load fails for memory.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from reflectchat.engine.gguf_header import Header, HeaderError, read_local
from reflectchat.models.catalog import Arch
from reflectchat.models.hardware import Hardware
from reflectchat.sizes import GIB

CTX_ALIGN = 256
N_UBATCH = 512
GPU_MARGIN = GIB
RAM_MARGIN = GIB
ENOUGH_ON_GPU = 0.5  # a partial offload worth recommending keeps at least half the layers there
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
    layers = [0] * n_layer
    output = embd = 0
    for header in headers:
        for tensor, size in header.tensors.items():
            if tensor.startswith("blk."):
                layers[int(tensor.split(".")[1])] += size
            elif tensor == "token_embd.weight":
                embd += size
            else:
                output += size
    tokens = meta.get("tokenizer.ggml.tokens")
    n_vocab = len(tokens) if isinstance(tokens, list) else int(tokens or 0)
    return ModelShape(n_layer, n_embd, n_head, number("attention.head_count_kv", n_head),
                      head_k, number("attention.value_length", head_k),
                      number("feed_forward_length"), n_vocab, tuple(layers), output, embd, True)


def shape_from_catalog(arch: Arch, file_bytes: int) -> ModelShape:
    """Estimated sizes from the architecture: the file's bytes spread over the parameters
    (each layer's attention and feed-forward, the embedding, the output layer)."""
    n_ff = arch.ffn
    kv = arch.kv_heads * arch.head_dim
    per_layer = arch.hidden * (2 * arch.heads * arch.head_dim + 2 * kv) + 3 * arch.hidden * n_ff
    vocab_params = arch.vocab * arch.hidden
    bytes_per_param = file_bytes / (arch.layers * per_layer + 2 * vocab_params)
    layer = int(per_layer * bytes_per_param)
    side = int(vocab_params * bytes_per_param)
    return ModelShape(arch.layers, arch.hidden, arch.heads, arch.kv_heads, arch.head_dim,
                      arch.head_dim, n_ff, arch.vocab, (layer,) * arch.layers, side, side, False)


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
class Plan:
    n_gpu_layers: int  # as llama.cpp counts: n_layer + 1 puts the output layer there too
    n_layer: int
    verdict: Verdict
    gpu_bytes: int  # needed on the GPUs, margin included
    ram_bytes: int  # needed in RAM, margin included
    kv_bytes: int
    compute_bytes: int

    @property
    def layers_on_gpu(self) -> int:
        return min(self.n_gpu_layers, self.n_layer)

    @property
    def label(self) -> str:
        if self.verdict is Verdict.PARTIAL:
            return f"partial: {self.layers_on_gpu} of {self.n_layer} layers on the GPU"
        return self.verdict.value


def plan(shape: ModelShape, hw: Hardware, n_ctx: int, type_k: str = "f16",
         type_v: str = "f16", flash_attn: bool = False) -> Plan:
    """The most layers this machine can hold on its GPUs, and whether the rest fits in RAM."""
    kv_layer = kv_bytes_per_layer(shape, n_ctx, type_k, type_v)
    compute = compute_bytes(shape, n_ctx, flash_attn)
    logits = shape.n_vocab * 4
    usable = [g for g in hw.gpus if g.free_bytes > GPU_MARGIN] if hw.build_offloads else []
    gpu_budget = sum(g.free_bytes - GPU_MARGIN for g in usable)
    unified = any(g.unified for g in usable)
    n = shape.n_layer
    for ngl in range(n + 1 if usable else 0, -1, -1):
        on_gpu = min(ngl, n)
        gpu = (sum(shape.layer_bytes[n - on_gpu:]) + kv_layer * on_gpu
               + (shape.output_bytes if ngl > n else 0) + (compute if ngl else 0))
        ram = (sum(shape.layer_bytes[:n - on_gpu]) + kv_layer * (n - on_gpu) + shape.embd_bytes
               + (0 if ngl > n else shape.output_bytes) + logits
               + (0 if ngl else compute) + RAM_MARGIN)
        if unified:  # the GPU's memory is the RAM: both must fit in it together
            ram += gpu
        if gpu <= gpu_budget and ram <= hw.ram_available_bytes:
            verdict = (Verdict.FULL_GPU if ngl > n else Verdict.PARTIAL if ngl
                       else Verdict.CPU_ONLY)
            return Plan(ngl, n, verdict, gpu + (GPU_MARGIN * len(usable) if ngl else 0), ram,
                        kv_layer * n, compute)
    ram_all = shape.weights_bytes + kv_layer * n + logits + compute + RAM_MARGIN
    return Plan(0, n, Verdict.NO_FIT, 0, ram_all, kv_layer * n, compute)


def recommend(plans: Sequence[tuple[int, Plan]]) -> int | None:
    """Index of the quant to use, from (file bytes, plan) pairs: the largest that fits fully
    on the GPUs, else the largest partial offload keeping enough layers there, else the
    largest that runs at all."""
    def largest(ok: list[int]) -> int | None:
        return max(ok, key=lambda i: plans[i][0]) if ok else None

    full = [i for i, (_, p) in enumerate(plans) if p.verdict is Verdict.FULL_GPU]
    partial = [i for i, (_, p) in enumerate(plans) if p.verdict is Verdict.PARTIAL
               and p.layers_on_gpu >= ENOUGH_ON_GPU * p.n_layer]
    runs = [i for i, (_, p) in enumerate(plans) if p.verdict is not Verdict.NO_FIT]
    return largest(full) if full else largest(partial) if partial else largest(runs)
