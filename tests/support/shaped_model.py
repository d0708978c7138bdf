"""A llama-architecture GGUF with the tensor shapes of a real model, scaled down (random
weights): what memory estimates are checked against."""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np


def write_shaped_gguf(
    path,
    n_layer=4,
    n_embd=512,
    n_head=8,
    n_head_kv=2,
    n_ff=1376,
    n_vocab=2000,
    dtype="f16",
    ctx=8192,
    zeros=False,  # all-zero weights: much quicker to write for large shapes
    control_tokens=0,  # this many of the vocabulary's words are control tokens instead
    mtp_layers=0,  # multi-token-prediction layers the header announces (none are written)
):
    head_dim = n_embd // n_head
    rng = np.random.default_rng(0)
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("shaped")
    w.add_context_length(ctx)
    w.add_embedding_length(n_embd)
    w.add_block_count(n_layer)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_head_kv)
    w.add_rope_dimension_count(head_dim)
    w.add_layer_norm_rms_eps(1e-5)
    if mtp_layers:
        w.add_uint32("llama.nextn_predict_layers", mtp_layers)
    w.add_vocab_size(n_vocab)
    w.add_tokenizer_model("llama")
    toks = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    toks += [f"t{i}" for i in range(n_vocab - len(toks))]
    words = n_vocab - 259
    types = [2, 3, 3] + [6] * 256 + [3] * control_tokens + [1] * (words - control_tokens)
    w.add_token_list(toks)
    w.add_token_scores([0.0] * n_vocab)
    w.add_token_types(types)
    w.add_unk_token_id(0)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    qt = {"f16": gguf.GGMLQuantizationType.F16, "q8_0": gguf.GGMLQuantizationType.Q8_0}[dtype]

    def mat(rows, cols):
        if zeros:
            data = np.zeros((rows, cols), dtype=np.float32)
        else:
            data = rng.standard_normal((rows, cols), dtype=np.float32) * 0.02
        if dtype == "f16":
            return data.astype(np.float16), None
        return gguf.quants.quantize(data, qt), qt

    def add(name, rows, cols):
        data, q = mat(rows, cols)
        if q is None:
            w.add_tensor(name, data)
        else:
            w.add_tensor(name, data, raw_shape=data.shape, raw_dtype=q)

    add("token_embd.weight", n_vocab, n_embd)
    w.add_tensor("output_norm.weight", np.ones(n_embd, dtype=np.float32))
    add("output.weight", n_vocab, n_embd)
    kv = n_head_kv * head_dim
    for i in range(n_layer):
        p = f"blk.{i}."
        w.add_tensor(p + "attn_norm.weight", np.ones(n_embd, dtype=np.float32))
        w.add_tensor(p + "ffn_norm.weight", np.ones(n_embd, dtype=np.float32))
        add(p + "attn_q.weight", n_embd, n_embd)
        add(p + "attn_k.weight", kv, n_embd)
        add(p + "attn_v.weight", kv, n_embd)
        add(p + "attn_output.weight", n_embd, n_embd)
        add(p + "ffn_gate.weight", n_ff, n_embd)
        add(p + "ffn_up.weight", n_ff, n_embd)
        add(p + "ffn_down.weight", n_embd, n_ff)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return Path(path)
