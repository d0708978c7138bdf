"""The engine's detokenizer on the real Llama 3 and Qwen2 vocabularies (no weights).

Set REFLECTCHAT_VOCAB_DIR to the folder holding ggml-vocab-llama-bpe.gguf and
ggml-vocab-qwen2.gguf (.ci/run points it at ../shared/vocab); without it these tests skip.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

import llama_cpp
import pytest

from reflectchat.engine.llama_cpp_model import LoadedModel
from reflectchat.engine.pieces import PieceDecoder
from reflectchat.reflection.answer import Answer
from reflectchat.reflection.parser import ReflectionParser

VOCAB_DIR = os.environ.get("REFLECTCHAT_VOCAB_DIR")
pytestmark = pytest.mark.skipif(not VOCAB_DIR, reason="REFLECTCHAT_VOCAB_DIR is not set")


@cache
def vocab_model(name: str) -> LoadedModel:
    return LoadedModel.vocab_only(str(Path(VOCAB_DIR) / name))


def llama3() -> LoadedModel:
    return vocab_model("ggml-vocab-llama-bpe.gguf")


def _byte_decoder() -> dict[str, int]:
    """GPT-2 byte-level BPE: the printable character standing for each byte."""
    bs = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
          *range(ord("®"), ord("ÿ") + 1)]
    cs = list(bs)
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs, strict=True)}


def expected_piece(llm: llama_cpp.Llama, token: int, decoder: dict[str, int]) -> bytes:
    text = llm._model.token_get_text(token)
    attr = llama_cpp.llama_vocab_get_attr(llm._model.vocab, token)
    if attr & (llama_cpp.LLAMA_TOKEN_ATTR_CONTROL | llama_cpp.LLAMA_TOKEN_ATTR_USER_DEFINED):
        return text.encode()
    return bytes(decoder[c] for c in text)


def test_every_llama3_token_renders_exactly():
    model = llama3()
    llm = model.llama  # the library itself, for the expected pieces
    decoder, pieces = _byte_decoder(), PieceDecoder(model.vocab)
    wrong, library_wrong = [], 0
    for token in range(llm.n_vocab()):
        expected = expected_piece(llm, token, decoder)
        if pieces.piece(token) != expected:
            wrong.append(token)
        if llm._model.detokenize([token], special=True) != expected:
            library_wrong += 1
    assert wrong == []
    assert library_wrong >= 231  # the pieces llama-cpp-python's 32-byte buffer drops


def test_reflection_tags_in_llama3_text_reach_the_parser():
    """Llama 3's base vocabulary has no tag tokens: tags arrive split over ordinary tokens."""
    model = llama3()
    text = ("<thinking>\nx² = 4 → x = ±2\n<reflection>\nNo: also check 😀 and 東京.\n"
            "</reflection>\n</thinking>\n<output>\n" + " " * 48 + "x = ±2\n</output>")
    tokens = model.vocab.tokenize(text, special=False)
    assert len(tokens) > 20
    pieces, parser, answer = PieceDecoder(model.vocab), ReflectionParser(), Answer()
    for token in tokens:
        for event in parser.feed(pieces.decode(token)):
            answer.apply(event)
    for event in parser.feed(pieces.flush()) + parser.finish():
        answer.apply(event)
    assert answer.thinking == "x² = 4 → x = ±2"
    assert answer.reflections == ["No: also check 😀 and 東京."]
    assert answer.output == "x = ±2"


def test_llama3_end_of_turn_tokens_stop_generation():
    vocab = llama3().vocab
    eot = vocab.tokenize("<|eot_id|>", special=True)
    assert len(eot) == 1 and vocab.is_eog(eot[0])
    header = vocab.tokenize("<|start_header_id|>", special=True)[0]
    assert not vocab.is_eog(header) and vocab.is_special(header)
    assert PieceDecoder(vocab).piece(header) == b"<|start_header_id|>"


@pytest.mark.parametrize("name", ["ggml-vocab-llama-bpe.gguf", "ggml-vocab-qwen2.gguf"])
def test_persian_and_emoji_survive_token_by_token_decoding(name):
    model = vocab_model(name)
    text = "سلام! این پاسخ است: ۴۲ 🧮 — done"
    tokens = model.vocab.tokenize(text, special=False)
    pieces = PieceDecoder(model.vocab)
    assert "".join(pieces.decode(t) for t in tokens) + pieces.flush() == text
