"""A small mixture-of-experts GGUF that the real llama.cpp loads with its experts: architecture
`qwen3moe` (as Qwen3-30B-A3B), random F16 weights, an SPM vocabulary of bytes and a few words.
It answers nonsense; what matters is its tensors: each layer's experts (`ffn_*_exps`) are most of
its bytes, as in the real models, and the header carries `expert_count` and
`expert_used_count`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gguf
import numpy as np


@dataclass(frozen=True)
class MoeShape:
    layers: int = 4
    embd: int = 256
    heads: int = 4
    kv_heads: int = 2
    head_dim: int = 64
    experts: int = 16
    experts_used: int = 2
    expert_ff: int = 256
    context: int = 2048


def write_moe_gguf(path: Path, shape: MoeShape = MoeShape(), seed: int = 0,
                   zeros: bool = False, quant: str = "f16", mixtral: bool = False) -> Path:
    """`zeros`: weights of zeros, quick to write at gigabyte sizes (the benchmarks'). `quant`:
    "f16", or "q4_0" for the matrices (a type llama.cpp repacks for faster CPU kernels).
    `mixtral`: written as Mixtral 8x7B's files are, architecture `llama` with expert counts
    and no `expert_feed_forward_length` (the experts' size is only in their tensors' shapes,
    and in `feed_forward_length`)."""
    rng = np.random.default_rng(seed)
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)] + \
        ["\u2581the", "\u2581answer", "\u2581is", "\u2581four", "."]
    types = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL] + \
        [gguf.TokenType.BYTE] * 256 + [gguf.TokenType.NORMAL] * 5
    n_vocab, e, s = len(tokens), shape.embd, shape

    def weights(*dims: int) -> np.ndarray:
        if zeros:
            return np.zeros(dims, dtype=np.float16)
        return (rng.standard_normal(dims) * 0.02).astype(np.float16)

    ones = np.ones(e, dtype=np.float32)
    tensors: dict[str, np.ndarray] = {
        "token_embd.weight": weights(n_vocab, e), "output_norm.weight": ones,
        "output.weight": weights(n_vocab, e),
    }
    for i in range(s.layers):
        blk = f"blk.{i}."
        tensors |= {
            blk + "attn_norm.weight": ones,
            blk + "attn_q.weight": weights(s.heads * s.head_dim, e),
            blk + "attn_k.weight": weights(s.kv_heads * s.head_dim, e),
            blk + "attn_v.weight": weights(s.kv_heads * s.head_dim, e),
            blk + "attn_output.weight": weights(e, s.heads * s.head_dim),
            **({} if mixtral else {
                blk + "attn_q_norm.weight": np.ones(s.head_dim, dtype=np.float32),
                blk + "attn_k_norm.weight": np.ones(s.head_dim, dtype=np.float32)}),
            blk + "ffn_norm.weight": ones,
            blk + "ffn_gate_inp.weight": (rng.standard_normal((s.experts, e)) * 0.02)
            .astype(np.float32),
            blk + "ffn_gate_exps.weight": weights(s.experts, s.expert_ff, e),
            blk + "ffn_up_exps.weight": weights(s.experts, s.expert_ff, e),
            blk + "ffn_down_exps.weight": weights(s.experts, e, s.expert_ff),
        }
    path.parent.mkdir(parents=True, exist_ok=True)
    w = gguf.GGUFWriter(str(path), "llama" if mixtral else "qwen3moe")
    w.add_name("reflectchat test MoE")
    w.add_context_length(s.context)
    w.add_embedding_length(e)
    w.add_block_count(s.layers)
    w.add_feed_forward_length(s.expert_ff)
    w.add_head_count(s.heads)
    w.add_head_count_kv(s.kv_heads)
    w.add_key_length(s.head_dim)
    w.add_value_length(s.head_dim)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_rope_freq_base(1e6)
    w.add_expert_count(s.experts)
    w.add_expert_used_count(s.experts_used)
    if mixtral:
        w.add_rope_dimension_count(s.head_dim)
    else:
        w.add_expert_feed_forward_length(s.expert_ff)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores([0.0] * n_vocab)
    w.add_token_types(types)
    w.add_unk_token_id(0)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    q4_0 = gguf.GGMLQuantizationType.Q4_0
    for name, data in tensors.items():
        if quant == "q4_0" and data.dtype == np.float16 and data.shape[-1] % 32 == 0 \
                and name != "token_embd.weight":
            w.add_tensor(name, gguf.quants.quantize(data.astype(np.float32), q4_0),
                         raw_dtype=q4_0)
        else:
            w.add_tensor(name, data)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path
