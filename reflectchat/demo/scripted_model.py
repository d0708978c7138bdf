"""Write a tiny llama-architecture GGUF that replays fixed scripts through the real llama.cpp.

Construction: an SPM vocabulary of control tokens, the 256 byte tokens and
one token per script chunk; one-hot token embeddings; one transformer block whose weights are
all zero, so the residual stream carries the embedding through unchanged; and an output matrix
that maps each token to its successor. Decoding, greedy or sampled, then replays each script
exactly. The chat template ends the prompt with a script's trigger (a control token) whose
successor is the script's first chunk; the last chunk's successor is end-of-sequence (or, for a
looping script, its first chunk again: an answer that runs until a token limit).

A token's successor is fixed, so a token text is used once across all scripts. Plain strings
are cut into fresh chunks automatically; `Control`, `Piece` and `Bytes` place exact tokens, and
a repeated one whose successor would differ is refused with a ValueError.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import gguf
import numpy as np

BOS, EOS = "<s>", "</s>"
TURN, END_TURN = "<|turn|>", "<|end_turn|>"
_LOGIT = 8.0  # times sqrt(n_embd) after the final RMS norm: a gap no sampler crosses
_HEAD_DIM = 64


@dataclass(frozen=True)
class Control:
    """One CONTROL token with this text (a tag typed special, as in real Reflection GGUFs)."""

    text: str


@dataclass(frozen=True)
class Piece:
    """One NORMAL token with exactly this text."""

    text: str


@dataclass(frozen=True)
class Bytes:
    """One byte token per UTF-8 byte of this text (splits multi-byte characters)."""

    text: str


Segment = str | Control | Piece | Bytes


@dataclass(frozen=True)
class Script:
    """A recorded answer, started by the control token `trigger` at the end of the prompt."""

    trigger: str
    segments: Sequence[Segment]
    loops: bool = False  # never ends: after the last segment it starts again from the first

    @property
    def text(self) -> str:
        return "".join(s if isinstance(s, str) else s.text for s in self.segments)


def chat_template(choices: Sequence[tuple[Sequence[str], str]], default: str) -> str:
    """A Jinja chat template ending in the trigger of the first choice whose keyword occurs
    in the last user message (case-insensitive), else `default`."""
    pick = ["{% set q = messages[-1]['content'] | lower %}"]
    for i, (keywords, trigger) in enumerate(choices):
        test = " or ".join(f"{kw.lower()!r} in q" for kw in keywords)
        pick.append(f"{'{% if' if i == 0 else '{% elif'} {test} %}}{trigger}")
    pick.append(f"{{% else %}}{default}{{% endif %}}" if choices else default)
    return (
        "{{ bos_token }}{% for m in messages %}"
        f"{TURN}{{{{ m['role'] }}}}\n{{{{ m['content'] }}}}{END_TURN}\n"
        "{% endfor %}{% if add_generation_prompt %}" + "".join(pick) + "{% endif %}"
    )


class _Vocab:
    def __init__(self) -> None:
        self.texts: list[str] = []
        self.types: list[int] = []
        self.index: dict[str, int] = {}
        self.successor: dict[int, int] = {}

    def add(self, text: str, kind: gguf.TokenType) -> int:
        if text in self.index:
            if self.types[self.index[text]] != int(kind):
                raise ValueError(f"token {text!r} is used with two token types")
            return self.index[text]
        self.index[text] = len(self.texts)
        self.texts.append(text)
        self.types.append(int(kind))
        return self.index[text]

    def link(self, token: int, nxt: int) -> None:
        if self.successor.setdefault(token, nxt) != nxt:
            raise ValueError(
                f"token {self.texts[token]!r} would need two successors: "
                "use it once, or only where the same token follows"
            )


def _spm(text: str) -> str:
    return text.replace(" ", "\u2581")


_WORD = re.compile(r"\s*\S+\s*|\s+")


def _fresh_chunks(text: str, vocab: _Vocab) -> list[str]:
    """Cut text into word-sized chunks whose token texts are not in the vocabulary yet.
    A used word grows until it is new; a used tail joins the chunk before it."""
    chunks: list[str] = []
    pos = 0
    while pos < len(text):
        start = pos + _WORD.match(text, pos).end() - pos
        ends = (e for e in range(start, len(text) + 1) if _spm(text[pos:e]) not in vocab.index)
        end = next(ends, None)
        chunk = text[pos:end] if end else chunks.pop() + text[pos:] if chunks else text[pos:]
        if _spm(chunk) in vocab.index:
            raise ValueError(f"cannot cut {text!r} into unused chunks: each token text occurs "
                             "once, so vary the text or join it to the text beside it")
        vocab.add(_spm(chunk), gguf.TokenType.NORMAL)
        chunks.append(chunk)
        pos = end or len(text)
    return chunks


def _script_tokens(script: Script, vocab: _Vocab) -> list[int]:
    ids: list[int] = []
    for seg in script.segments:
        if isinstance(seg, Control):
            ids.append(vocab.add(seg.text, gguf.TokenType.CONTROL))
        elif isinstance(seg, Piece):
            ids.append(vocab.add(_spm(seg.text), gguf.TokenType.NORMAL))
        elif isinstance(seg, Bytes):
            ids.extend(vocab.index[f"<0x{b:02X}>"] for b in seg.text.encode())
        else:
            ids.extend(vocab.index[_spm(c)] for c in _fresh_chunks(seg, vocab))
    return ids


def write_scripted_gguf(
    path: Path,
    scripts: Sequence[Script],
    template: str | None = None,
    context_length: int = 4096,
    name: str = "reflectchat scripted model",
    shards: int = 1,
) -> Path:
    """Write the GGUF to `path` (atomically) and return it. Without a template, the prompt
    always ends with the first script's trigger; with `template=""` the file has none. With
    `shards` > 1 it writes a gguf-split model (`NAME-00001-of-0000N.gguf`, ...) beside `path`
    and returns the first shard."""
    vocab = _Vocab()
    for text, kind in [("<unk>", gguf.TokenType.UNKNOWN), (BOS, gguf.TokenType.CONTROL),
                       (EOS, gguf.TokenType.CONTROL), (TURN, gguf.TokenType.CONTROL),
                       (END_TURN, gguf.TokenType.CONTROL)]:
        vocab.add(text, kind)
    for b in range(256):
        vocab.add(f"<0x{b:02X}>", gguf.TokenType.BYTE)
    for script in scripts:
        trigger = vocab.add(script.trigger, gguf.TokenType.CONTROL)
        tokens = _script_tokens(script, vocab)
        chain = [trigger, *tokens, tokens[0] if script.loops else vocab.index[EOS]]
        for a, b in pairwise(chain):
            vocab.link(a, b)
    if template is None:
        template = chat_template([], scripts[0].trigger)
    return _write(Path(path), vocab, template, context_length, name, shards)


def _write(path: Path, vocab: _Vocab, template: str, n_ctx: int, name: str, shards: int) -> Path:
    n_vocab = len(vocab.texts)
    n_embd = -(-n_vocab // _HEAD_DIM) * _HEAD_DIM
    embed = np.zeros((n_vocab, n_embd), dtype=np.float16)
    embed[np.arange(n_vocab), np.arange(n_vocab)] = 1.0
    output = np.zeros((n_vocab, n_embd), dtype=np.float16)
    eos = vocab.index[EOS]
    for token in range(n_vocab):
        output[vocab.successor.get(token, eos), token] = _LOGIT
    ones = np.ones(n_embd, dtype=np.float32)
    into_head = np.zeros((_HEAD_DIM, n_embd), dtype=np.float16)  # the block's weights: all zero
    from_head = np.zeros((n_embd, _HEAD_DIM), dtype=np.float16)
    tensors = {
        "token_embd.weight": embed, "output_norm.weight": ones, "output.weight": output,
        "blk.0.attn_norm.weight": ones, "blk.0.attn_q.weight": into_head,
        "blk.0.attn_k.weight": into_head, "blk.0.attn_v.weight": into_head,
        "blk.0.attn_output.weight": from_head, "blk.0.ffn_norm.weight": ones,
        "blk.0.ffn_gate.weight": into_head, "blk.0.ffn_up.weight": into_head,
        "blk.0.ffn_down.weight": from_head,
    }

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp") if shards == 1 else path
    per_shard = -(-len(tensors) // shards) if shards > 1 else 0
    w = gguf.GGUFWriter(str(tmp), "llama", split_max_tensors=per_shard)
    w.add_name(name)
    w.add_context_length(n_ctx)
    w.add_embedding_length(n_embd)
    w.add_block_count(1)
    w.add_feed_forward_length(_HEAD_DIM)
    w.add_head_count(1)
    w.add_head_count_kv(1)
    w.add_key_length(_HEAD_DIM)
    w.add_value_length(_HEAD_DIM)
    w.add_rope_dimension_count(_HEAD_DIM)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(n_vocab)
    w.add_tokenizer_model("llama")
    w.add_token_list(vocab.texts)
    w.add_token_scores([0.0] * n_vocab)
    w.add_token_types(vocab.types)
    w.add_unk_token_id(vocab.index["<unk>"])
    w.add_bos_token_id(vocab.index[BOS])
    w.add_eos_token_id(eos)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    if template:
        w.add_chat_template(template)

    for tensor_name, data in tensors.items():
        w.add_tensor(tensor_name, data)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    if shards == 1:
        return tmp.replace(path)
    return w.format_shard_names(path)[0]
