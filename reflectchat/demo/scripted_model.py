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
a repeated one whose successor would differ is refused with a ValueError, with one exception:
a `Control` token may come back with other successors, as a real model writes `<|channel|>`
twice or every answer opens `<thinking>` (special tokens cannot be spelled in plain pieces and
still be special). Its occurrences are told apart by what the context holds: one attention
head per repeat looks, from the control token, for its answer's trigger (its first
occurrence in an answer) or for a plain token first written since its previous occurrence
(content only: RoPE is scaled to a standstill), and the output weights prefer the latest
occurrence's successor once that token is in the context. Such a plain token must therefore
be in no other answer and not in the prompt (the template).
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
_MATCH = 24.0  # attention score of a repeat's query on its key (after 1/sqrt(head dim))
_STILL = 1e6  # RoPE's linear scaling: 4,096 positions turn a key by 0.004 rad


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
class Cost:
    """What a scripted model costs and how far it keeps to its scripts: `layers` blocks (the
    first does the work, the rest are all zeros: the same answers, their matmuls still
    computed), an embedding at least `width` wide and an FFN `ffn` wide; `astray` of the plain
    tokens (chosen by `seed`) are followed by the token after their successor instead, so a
    draft model with astray > 0 proposes what its target keeps only that often. `wide`: the
    FFNs' number type (float32 makes a model whose decoding waits on memory, not on
    arithmetic, as a 70B's does)."""

    layers: int = 1
    width: int = 0
    ffn: int = 64
    astray: float = 0.0
    seed: int = 0
    wide: type = np.float16


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


@dataclass(frozen=True)
class _Repeat:
    """A control token's later occurrence: once `seen` is in the context, `then` follows."""

    token: int
    level: int  # 1 for its second occurrence, 2 for its third, ...
    seen: int
    then: int


class _Vocab:
    def __init__(self) -> None:
        self.texts: list[str] = []
        self.types: list[int] = []
        self.index: dict[str, int] = {}
        self.successor: dict[int, int] = {}
        self.repeats: list[_Repeat] = []

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
    cost: Cost | None = None,
) -> Path:
    """Write the GGUF to `path` (atomically) and return it. Without a template, the prompt
    always ends with the first script's trigger; with `template=""` the file has none. With
    `shards` > 1 it writes a gguf-split model (`NAME-00001-of-0000N.gguf`, ...) beside `path`
    and returns the first shard. `cost`: a model of the same tokens that costs more to run or
    strays from the scripts (speculative decoding's target and draft)."""
    vocab = _Vocab()
    for text, kind in [("<unk>", gguf.TokenType.UNKNOWN), (BOS, gguf.TokenType.CONTROL),
                       (EOS, gguf.TokenType.CONTROL), (TURN, gguf.TokenType.CONTROL),
                       (END_TURN, gguf.TokenType.CONTROL)]:
        vocab.add(text, kind)
    for b in range(256):
        vocab.add(f"<0x{b:02X}>", gguf.TokenType.BYTE)
    chains = []
    for script in scripts:
        trigger = vocab.add(script.trigger, gguf.TokenType.CONTROL)
        tokens = _script_tokens(script, vocab)
        chains.append([trigger, *tokens, tokens[0] if script.loops else vocab.index[EOS]])
    if template is None:
        template = chat_template([], scripts[0].trigger)
    _link(chains, vocab, template)
    return _write(Path(path), vocab, template, context_length, name, shards, cost or Cost())


def _link(chains: list[list[int]], vocab: _Vocab, template: str) -> None:
    """Each token's successor. A control token met again with another successor (in the same
    answer or another) becomes `_Repeat`s, in order: its first occurrence in another answer
    is told apart by that answer's trigger (in the prompt only when that answer is asked
    for), a later one in the same answer by a token first written since the one before."""
    at: dict[int, list[tuple[int, int]]] = {}
    for c, chain in enumerate(chains):
        for i, token in enumerate(chain[:-1]):
            if vocab.types[token] == int(gguf.TokenType.CONTROL):
                at.setdefault(token, []).append((c, i))
    repeated = {t for t, places in at.items()
                if len({chains[c][i + 1] for c, i in places}) > 1}
    for chain in chains:
        for a, b in pairwise(chain):
            if a not in repeated:
                vocab.link(a, b)
    for token in repeated:
        first_chain, first = at[token][0]
        vocab.link(token, chains[first_chain][first + 1])
        for level, ((before_c, before), (c, i)) in enumerate(pairwise(at[token]), start=1):
            chain = chains[c]
            if before_c != c and chain[0] != token:
                seen: int | None = chain[0]
            else:
                seen = next((t for t in chain[before + 1:i] if _marks_a_repeat(
                    t, chain, before, vocab, chains, template)), None)
            if seen is None:
                raise ValueError(f"{vocab.texts[token]!r} comes back with another successor, "
                                 "but nothing between makes it another occurrence: write text "
                                 "before it that is used once and is not in the template")
            vocab.repeats.append(_Repeat(token, level, seen, chain[i + 1]))


def _marks_a_repeat(token: int, chain: list[int], since: int, vocab: _Vocab,
                    chains: list[list[int]], template: str) -> bool:
    """A plain token first written after `since` that neither another answer nor the prompt
    holds (its text is not in the template)."""
    return vocab.types[token] == int(gguf.TokenType.NORMAL) and token not in chain[:since + 1] \
        and all(token not in c for c in chains if c is not chain) \
        and vocab.texts[token].replace("\u2581", " ") not in template


def _write(path: Path, vocab: _Vocab, template: str, n_ctx: int, name: str, shards: int,
           cost: Cost) -> Path:
    n_vocab = len(vocab.texts)
    n_head = max(len(vocab.repeats), 1)
    n_embd = -(-max(n_vocab + len(vocab.repeats), cost.width) // _HEAD_DIM) * _HEAD_DIM
    embed = np.zeros((n_vocab, n_embd), dtype=np.float16)
    embed[np.arange(n_vocab), np.arange(n_vocab)] = 1.0
    output = np.zeros((n_vocab, n_embd), dtype=np.float16)
    eos = vocab.index[EOS]
    astray = np.random.default_rng(cost.seed).random(n_vocab) < cost.astray
    for token in range(n_vocab):
        then = vocab.successor.get(token, eos)
        if astray[token] and vocab.types[token] == int(gguf.TokenType.NORMAL):
            then = vocab.successor.get(then, eos)
        output[then, token] = _LOGIT
    ones = np.ones(n_embd, dtype=np.float32)
    attention = _attention(vocab, n_head, n_embd, output)
    tensors = {"token_embd.weight": embed, "output_norm.weight": ones, "output.weight": output}
    for layer in range(cost.layers):
        block = attention if layer == 0 else {
            k: np.zeros_like(v) for k, v in attention.items()}  # the same answers
        tensors |= {k.replace("blk.0.", f"blk.{layer}."): v for k, v in block.items()}
        tensors |= {  # the FFN's weights: all zero
            f"blk.{layer}.attn_norm.weight": ones, f"blk.{layer}.ffn_norm.weight": ones,
            f"blk.{layer}.ffn_gate.weight": np.zeros((cost.ffn, n_embd), dtype=cost.wide),
            f"blk.{layer}.ffn_up.weight": np.zeros((cost.ffn, n_embd), dtype=cost.wide),
            f"blk.{layer}.ffn_down.weight": np.zeros((n_embd, cost.ffn), dtype=cost.wide),
        }

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp") if shards == 1 else path
    per_shard = -(-len(tensors) // shards) if shards > 1 else 0
    w = gguf.GGUFWriter(str(tmp), "llama", split_max_tensors=per_shard)
    w.add_name(name)
    w.add_context_length(n_ctx)
    w.add_embedding_length(n_embd)
    w.add_block_count(cost.layers)
    w.add_feed_forward_length(cost.ffn)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_head)
    w.add_key_length(_HEAD_DIM)
    w.add_value_length(_HEAD_DIM)
    w.add_rope_dimension_count(_HEAD_DIM)
    # positions barely turn the keys: attention matches tokens by content alone
    w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
    w.add_rope_scaling_factor(_STILL)
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


def _attention(vocab: _Vocab, n_head: int, n_embd: int,
               output: np.ndarray) -> dict[str, np.ndarray]:
    """The block's attention: one head a repeat looks, from its control token, for the token
    that marks the repeat; what it finds lands in a feature dimension of its own (past the
    vocabulary's), and `output` weighs the feature towards the repeat's successor, later
    repeats more (the base successor loses 3 logits a repeat). All zero where no token
    repeats."""
    n_vocab, width = len(vocab.texts), n_head * _HEAD_DIM
    scale = float(np.sqrt(n_embd))  # the RMS norm turns a one-hot row into sqrt(n_embd)
    q, k, v = (np.zeros((width, n_embd), dtype=np.float16) for _ in range(3))
    o = np.zeros((n_embd, width), dtype=np.float16)
    for feature, r in enumerate(vocab.repeats):
        row = feature * _HEAD_DIM
        q[row, r.token] = _MATCH * np.sqrt(_HEAD_DIM) / scale
        k[row, r.seen] = v[row, r.seen] = 1.0 / scale
        o[n_vocab + feature, row] = 1.0
        output[r.then, n_vocab + feature] += 2 * (r.level + 1) * _LOGIT
        output[vocab.successor[r.token], n_vocab + feature] -= 3 * _LOGIT
    return {"blk.0.attn_q.weight": q, "blk.0.attn_k.weight": k, "blk.0.attn_v.weight": v,
            "blk.0.attn_output.weight": o}
