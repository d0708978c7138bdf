"""The memory plan: published Llama 70B figures, plans for typical machines, and estimates
checked against the buffer sizes llama.cpp itself logs when loading generated GGUFs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from support.shaped_model import write_shaped_gguf

from reflectchat.engine.cpu import repack_default
from reflectchat.engine.llama import EngineSettings, LlamaEngine
from reflectchat.models.catalog import Arch
from reflectchat.models.fit import (
    Verdict,
    compute_bytes,
    kv_bytes_per_layer,
    plan,
    shape_from_catalog,
    shape_from_gguf,
)
from reflectchat.models.hardware import GPU, Hardware, detect
from reflectchat.models.quant_plans import fit_rows
from reflectchat.sizes import GIB

LLAMA_70B = Arch(layers=80, heads=64, kv_heads=8, head_dim=128, hidden=8192, vocab=128256,
                 ffn=28672)
GB = 10**9


def machine(ram_gib: float, *gpus_gib: float, offloads: bool = True) -> Hardware:
    gpus = [GPU(f"GPU {i}", "nvidia", int(g * GIB), int(g * GIB)) for i, g in enumerate(gpus_gib)]
    return Hardware(16, int(ram_gib * GIB), int(ram_gib * GIB), gpus, offloads, ["cuda"])


def test_kv_cache_matches_the_published_llama_70b_figures():
    shape = shape_from_catalog(LLAMA_70B, int(42.5 * GB))
    assert kv_bytes_per_layer(shape, 8192) * 80 // 8192 == 320 * 1024  # 320 KiB per token
    assert kv_bytes_per_layer(shape, 8192) * 80 == int(2.5 * GIB)
    assert kv_bytes_per_layer(shape, 32768) * 80 == 10 * GIB
    assert kv_bytes_per_layer(shape, 8192, "q8_0", "q8_0") * 64 == \
        kv_bytes_per_layer(shape, 8192) * 34
    assert kv_bytes_per_layer(shape, 3000) == kv_bytes_per_layer(shape, 3072)  # rounded up
    assert 1 * GIB <= compute_bytes(shape, 8192) <= 1.5 * GIB


def test_plans_for_typical_machines():
    q4 = shape_from_catalog(LLAMA_70B, int(42.5 * GB))
    q8 = shape_from_catalog(LLAMA_70B, int(74.98 * GB))
    assert plan(q4, machine(128, 48, 48), 8192).verdict is Verdict.FULL_GPU
    assert plan(q8, machine(128, 48, 48), 8192).n_gpu_layers == 81  # output layer too
    one_4090 = plan(q4, machine(64, 24), 8192)
    assert one_4090.verdict is Verdict.PARTIAL and 20 < one_4090.layers_on_gpu < 50
    assert one_4090.gpu_bytes <= 24 * GIB and one_4090.ram_bytes <= 64 * GIB
    assert one_4090.label == f"partial: {one_4090.layers_on_gpu} of 80 layers on the GPU"
    longer = plan(q4, machine(64, 24), 32768)
    assert longer.layers_on_gpu < one_4090.layers_on_gpu  # a bigger KV cache leaves less room
    assert plan(q4, machine(64), 8192).verdict is Verdict.CPU_ONLY
    assert plan(q8, machine(64), 8192).verdict is Verdict.NO_FIT
    cpu_build = plan(q4, machine(64, 48, offloads=False), 8192)
    assert cpu_build.verdict is Verdict.CPU_ONLY  # the GPU is there but llama.cpp can't use it


def test_the_star_goes_to_the_largest_quant_that_fits_fully_on_the_gpu():
    hw = machine(128, 80)
    rows = [r for r in fit_rows(hw, 8192) if r.group_key == "reflection-llama-3.1-70b"]
    star = [r for r in rows if r.recommended]
    assert len(star) == 1 and star[0].plan.verdict is Verdict.FULL_GPU
    assert star[0].size == max(r.size for r in rows if r.plan.verdict is Verdict.FULL_GPU)
    assert [r for r in fit_rows(machine(4), 8192) if r.recommended] == []  # nothing fits


def test_catalog_estimates_are_close_to_the_header(tmp_path):
    path = write_shaped_gguf(tmp_path / "m.gguf", n_layer=6, n_embd=512, n_head=8, n_head_kv=2,
                             n_ff=1376, n_vocab=3000)
    exact = shape_from_gguf([path])
    arch = Arch(layers=6, heads=8, kv_heads=2, head_dim=64, hidden=512, vocab=3000, ffn=1376)
    estimate = shape_from_catalog(arch, path.stat().st_size)
    assert exact.exact and not estimate.exact
    assert estimate.layer_bytes[0] == pytest.approx(exact.layer_bytes[0], rel=0.05)
    assert (exact.n_layer, exact.n_head_kv, exact.head_dim_k, exact.n_ff, exact.n_vocab) == \
        (6, 2, 64, 1376, 3000)


def llama_cpp_buffers(path: Path, n_ctx: int, flash_attn: bool) -> dict[str, float]:
    """Load as the app does and read the buffer sizes llama.cpp logged, in bytes, by kind."""
    engine = LlamaEngine(path, EngineSettings(n_ctx=n_ctx, flash_attn=flash_attn))
    engine.close()
    sizes: dict[str, float] = {}
    for key, size in engine.buffers.items():
        kind = key.split()[-1]
        sizes[kind] = sizes.get(kind, 0) + size
    return sizes


@pytest.mark.parametrize("dtype", ["f16", "q8_0"])
@pytest.mark.parametrize("n_ctx", [512, 2048, 8192])
@pytest.mark.parametrize("flash_attn", [False, True], ids=["fa-off", "fa-on"])
def test_estimate_within_10_percent_of_what_llama_cpp_allocates(tmp_path, dtype, n_ctx,
                                                                flash_attn):
    # Llama 3's proportions, scaled down: 8 heads of 64, 2 KV heads, feed-forward 3.5x
    path = write_shaped_gguf(tmp_path / "m.gguf", n_layer=8, n_embd=512, n_head=8,
                             n_head_kv=2, n_ff=1792, n_vocab=4000, dtype=dtype)
    shape = shape_from_gguf([path])
    actual = llama_cpp_buffers(path, n_ctx, flash_attn)
    cpu = plan(shape, machine(64), n_ctx, flash_attn=flash_attn)
    assert cpu.verdict is Verdict.CPU_ONLY
    assert shape.weights_bytes == pytest.approx(actual["model"], rel=0.005)
    assert cpu.kv_bytes == pytest.approx(actual["KV"], rel=0.005)
    assert cpu.compute_bytes == pytest.approx(actual["compute"], rel=0.12)
    estimate = shape.weights_bytes + cpu.kv_bytes + cpu.compute_bytes + shape.n_vocab * 4
    assert estimate == pytest.approx(sum(actual.values()), rel=0.10)


def put_in_hf_cache(repo: str, filename: str, source: Path) -> Path:
    """A file where huggingface_hub's cache keeps it (HF_HOME is a test folder)."""
    root = Path(os.environ["HF_HOME"]) / "hub" / f"models--{repo.replace('/', '--')}"
    (root / "refs").mkdir(parents=True, exist_ok=True)
    (root / "refs" / "main").write_text("0" * 40)
    target = root / "snapshots" / ("0" * 40) / filename
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(source.read_bytes())
    return target


def test_models_table_uses_the_header_of_a_cached_file(tmp_path):
    shaped = write_shaped_gguf(tmp_path / "m.gguf", n_layer=4, n_embd=256, n_head=4,
                               n_head_kv=2, n_ff=704, n_vocab=1000)
    put_in_hf_cache("Qwen/QwQ-32B-GGUF", "qwq-32b-q4_k_m.gguf", shaped)
    result = subprocess.run([sys.executable, "-m", "reflectchat", "models", "--json"],
                            capture_output=True, text=True, timeout=120)
    rows = json.loads(result.stdout)
    cached = [r for r in rows if r["downloaded"]]
    assert [(r["model"], r["quant"], r["sizes_from"]) for r in cached] == \
        [("qwq-32b", "Q4_K_M", "file")]
    assert cached[0]["layers"] == 4  # read from the file, not the catalog's 64
    for model in {r["model"] for r in rows}:
        picks = [r for r in rows if r["model"] == model and r["recommended"]]
        assert len(picks) <= 1
        assert all(r["verdict"] != "does not fit" for r in picks)
    text = subprocess.run([sys.executable, "-m", "reflectchat", "models"], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "COLUMNS": "160"}).stdout
    assert "qwq-32b  32.8B  Qwen/QwQ-32B-GGUF" in text and "tok/s" in text


def test_models_plans_a_gguf_file_given_by_path(tmp_path):
    shaped = write_shaped_gguf(tmp_path / "mine.gguf", n_layer=4, n_embd=256, n_head=4,
                               n_head_kv=2, n_ff=704, n_vocab=1000)
    run = [sys.executable, "-m", "reflectchat", "models"]
    shown = subprocess.run([*run, str(shaped), "--ctx", "2048"], capture_output=True,
                           text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert "mine.gguf" in shown.stdout and "4 layers" in shown.stdout
    assert "neither a GGUF file nor a catalog model" not in shown.stderr
    data = json.loads(subprocess.run([*run, str(shaped), "--json", "--ctx", "2048"],
                                     capture_output=True, text=True, timeout=120).stdout)
    expected = plan(shape_from_gguf([shaped]), detect(), 2048)
    assert (data["layers"], data["kv_bytes"], data["n_ctx"]) == (4, expected.kv_bytes, 2048)
    bad_split = subprocess.run([*run, str(shaped), "--tensor-split", "3,x"],
                               capture_output=True, text=True, timeout=120)
    assert bad_split.returncode == 1 and "--tensor-split takes shares like 3,1" in \
        bad_split.stderr
    missing = subprocess.run([*run, str(tmp_path / "gone.gguf")], capture_output=True,
                             text=True, timeout=120)
    assert missing.returncode == 1 and "Model file not found" in missing.stderr


def test_repacked_copies_count_only_for_cpu_layers_and_only_where_they_fit():
    """A 70B Q4_K_M whose CPU layers are mostly repackable (70% of each layer here): the copies
    add RAM for the layers on the CPU alone; where they would not fit, auto plans without
    them (so repacking never costs a GPU layer or makes a model not fit)."""
    base = shape_from_catalog(LLAMA_70B, int(42.5 * GB))
    layer = base.layer_bytes[0]
    shape = replace(base, repack_layer_bytes=(int(layer * 0.7),) * base.n_layer)
    partial = plan(shape, machine(128, 24), 8192, repack=True)
    without = plan(shape, machine(128, 24), 8192, repack=False)
    cpu_layers = base.n_layer - partial.layers_on_gpu
    assert partial.ram_bytes - without.ram_bytes == int(layer * 0.7) * cpu_layers
    full = plan(shape, machine(128, 48, 48), 8192, repack=True)
    assert full.verdict is Verdict.FULL_GPU and full.ram_bytes == \
        plan(shape, machine(128, 48, 48), 8192, repack=False).ram_bytes  # nothing on the CPU
    tight = machine(without.ram_bytes / GIB + 1, 24)  # room for the layers, not their copies
    assert not plan(shape, tight, 8192).repack
    assert plan(shape, tight, 8192).layers_on_gpu == without.layers_on_gpu
    roomy = plan(shape, machine(256, 24), 8192)
    assert roomy.repack == repack_default()


def test_a_mixtures_prompt_speed_is_scaled_by_its_active_parameters():
    """gpt-oss-20b read 'decode <= 4.3, prompt <= 2.1 tok/s': the prompt estimate scaled a
    dense model's measured speed by all 21B parameters, not the 3.6B a token computes with."""
    from reflectchat.models.catalog import load_catalog
    from reflectchat.models.speed import prompt_estimate

    entry = next(m for m in load_catalog().models if m.id == "gpt-oss-20b")
    moe = shape_from_catalog(entry.arch, entry.quants[0].size)
    assert 2.5e9 < moe.active_params < 5e9 < moe.params  # OpenAI: 3.6B active of 21B
    measured = [(8_000_000_000, 60.0)]  # a dense 8B processed prompts at 60 tok/s here
    assert prompt_estimate(moe.active_params, measured) > 100  # not 8/21 x 60 = 23
    dense = shape_from_catalog(LLAMA_70B, int(42.5 * GB))
    assert dense.active_params == dense.params
