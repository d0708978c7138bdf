"""The real path on a real model: Gemma 3 270M (Q4_K_M) through the real llama.cpp, from
`ask` to the memory plan. A base model rambles, so these prove the machinery, not reasoning;
the scripted GGUFs cover the reasoning formats."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import pytest
from support.ggml_gguf import llama_cpp_header

from reflectchat.engine.base import ChatMessage, FinishReason, Sampling
from reflectchat.engine.cpu import repacked_types
from reflectchat.engine.gguf_header import read_local
from reflectchat.engine.llama import EngineSettings, LlamaEngine
from reflectchat.models.fit import plan, shape_from_gguf
from reflectchat.models.hardware import Hardware
from reflectchat.sizes import GIB

QUESTION = [ChatMessage("user", "Write a sentence about the sea.")]


def test_ask_answers_and_stops_at_the_end_of_turn_or_the_limit(real_model):
    done = subprocess.run([sys.executable, "-m", "reflectchat", "ask", "--model",
                           str(real_model), "--max-tokens", "24", "--json", "--no-save",
                           "Write a sentence about the sea."],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "no chat template; using gemma" in done.stderr
    answer = json.loads(done.stdout)
    stats = answer["stats"]
    assert answer["finish_reason"] in ("stop", "length")
    assert 0 < stats["completion_tokens"] <= 24
    assert answer["finish_reason"] == "stop" or stats["completion_tokens"] == 24
    assert stats["prompt_tokens"] > 5 and stats["tokens_per_second"] > 1
    assert 0 < stats["time_to_first_token_s"] < stats["total_s"]
    assert answer["output"] and "<end_of_turn>" not in answer["raw"]


def test_stop_mid_answer_keeps_what_came(real_model):
    engine = LlamaEngine(real_model, EngineSettings(n_ctx=1024))
    cancel = threading.Event()
    generation = engine.generate(QUESTION, Sampling(max_tokens=500, seed=1), cancel)
    pieces = []
    for piece in generation:
        pieces.append(piece)
        if len(pieces) == 5:
            cancel.set()
    engine.close()
    assert generation.stats.finish_reason is FinishReason.CANCELLED
    assert 5 <= generation.stats.completion_tokens < 20 and "".join(pieces).strip()


@pytest.mark.parametrize("n_ctx", [2048, 8192])
def test_the_memory_plan_is_within_3_percent_of_what_llama_cpp_allocates(real_model, n_ctx):
    engine = LlamaEngine(real_model, EngineSettings(n_ctx=n_ctx))
    allocated = engine.buffers
    engine.close()
    by_kind: dict[str, int] = {}
    for key, size in allocated.items():
        by_kind[key.split()[-1]] = by_kind.get(key.split()[-1], 0) + size
    # the memory-mapped file, plus llama.cpp's repacked copy of some matrices where the engine
    # turned repacking on for this CPU (engine/cpu.py)
    copies = {k for k in allocated if k.endswith(" model") and k != "CPU_Mapped model"}
    assert set(allocated) - copies == {"CPU_Mapped model", "CPU KV", "CPU compute",
                                       "CPU output"}
    assert bool(copies) == (engine.repack and bool(repacked_types()))
    shape = shape_from_gguf([real_model])
    planned = plan(shape, Hardware(2, 64 * GIB, 64 * GIB), n_ctx, repack=engine.repack)
    copied = shape.repack_bytes(shape.n_layer, True) if engine.repack else 0
    assert shape.weights_bytes + copied == pytest.approx(by_kind["model"], rel=0.03)
    # sliding-window layers included: llama.cpp keeps a full-size cache for them too
    assert planned.kv_bytes == pytest.approx(by_kind["KV"], rel=0.03)
    assert planned.compute_bytes == pytest.approx(by_kind["compute"], rel=0.03)
    total = shape.weights_bytes + copied + planned.kv_bytes + planned.compute_bytes + \
        shape.n_vocab * 4
    assert total == pytest.approx(sum(by_kind.values()), rel=0.03)


def test_our_header_reader_agrees_with_llama_cpps(real_model):
    """Every tensor's size and every key's value (arrays as their length), as ggml's own
    gguf reader, the one llama.cpp loads the model with, reads them."""
    tensors, metadata = llama_cpp_header(real_model)
    ours = read_local(real_model)
    assert ours.tensors == tensors and len(tensors) > 200
    assert ours.metadata == metadata
    assert metadata["gemma3.attention.sliding_window"] == 512
    assert metadata["tokenizer.ggml.tokens"] == 262144


def test_a_real_model_repeating_itself_is_stopped_as_a_loop(real_model):
    """Gemma 3 270M has no chat template and, greedy, answers this by repeating the question
    and a stray word over and over; with no token limit it would run to the context's end."""
    done = subprocess.run([sys.executable, "-m", "reflectchat", "ask", "--model",
                           str(real_model), "--temperature", "0", "--ctx", "8192", "--json",
                           "--no-save", "What is the capital of France?"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["finish_reason"] == "loop"
    # the question is the prompt's, but the prompt names no count: it is a loop, within 1,000
    # tokens (not the 8,000 left in the context)
    assert answer["stats"]["completion_tokens"] < 1000
