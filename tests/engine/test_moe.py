"""A mixture of experts, placed as llama.cpp places one: a generated `qwen3moe` GGUF loaded by
the real llama.cpp with its experts overridden into RAM (the CPU build shows the overrides in
llama.cpp's own log), the memory plan against the buffers it logs, and the plan and speed for
the big models on a machine with one GPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.moe_model import MoeShape, write_moe_gguf

from reflectchat.cli.args import engine_settings
from reflectchat.cli.parser import build_parser
from reflectchat.engine.llama import EngineSettings, LlamaEngine
from reflectchat.engine.placement import experts_in_ram
from reflectchat.models.catalog import load_catalog
from reflectchat.models.choice import choose_model
from reflectchat.models.fit import Verdict, plan, shape_from_catalog, shape_from_gguf
from reflectchat.models.hardware import GPU, Hardware
from reflectchat.models.speed import decode_bound, placement
from reflectchat.paths import config_file
from reflectchat.sizes import GIB

EXPERT_TENSORS = ("ffn_gate_exps", "ffn_up_exps", "ffn_down_exps")


@pytest.fixture(scope="module")
def moe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_moe_gguf(tmp_path_factory.mktemp("moe") / "tiny-moe.gguf")


@pytest.fixture(scope="module")
def mixtral(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """As Mixtral's files are: `llama` with expert counts, no expert_feed_forward_length."""
    return write_moe_gguf(tmp_path_factory.mktemp("moe") / "tiny-mixtral.gguf", mixtral=True)


@pytest.fixture(params=["qwen3moe", "mixtral"])
def any_moe(request: pytest.FixtureRequest, moe: Path, mixtral: Path) -> Path:
    return moe if request.param == "qwen3moe" else mixtral


def loaded_overrides(path: Path, *cli: str) -> dict[str, str]:
    """Load as `ask` would with these options; what llama.cpp logged it overrode."""
    args = build_parser().parse_args(["ask", "--model", str(path), *cli, "q"])
    settings = engine_settings(args, choose_model(str(path), None, False))
    engine = LlamaEngine(path, settings)
    engine.close()
    return engine.overridden


def experts_of(layers: range) -> dict[str, str]:
    return {f"blk.{i}.{t}.weight": "CPU" for i in layers for t in EXPERT_TENSORS}


def test_each_option_places_the_experts_llama_cpp_logs_it(moe):
    layers = MoeShape().layers
    assert loaded_overrides(moe) == {}  # no GPU here: the plan keeps nothing apart
    assert loaded_overrides(moe, "--cpu-moe") == experts_of(range(layers))
    assert loaded_overrides(moe, "--n-cpu-moe", "2") == experts_of(range(2))
    assert loaded_overrides(moe, "-ot", r"blk\.3\.ffn_up_exps=CPU",
                            "--override-tensor", r"blk\.1\.ffn_down_exps=CPU") == \
        {"blk.3.ffn_up_exps.weight": "CPU", "blk.1.ffn_down_exps.weight": "CPU"}


def test_config_toml_places_the_experts_of_a_model(moe):
    path = config_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'[models."{moe.name}"]\nn_cpu_moe = 3\n', encoding="utf-8")
    assert loaded_overrides(moe) == experts_of(range(3))
    assert loaded_overrides(moe, "--n-cpu-moe", "1") == experts_of(range(1))  # the flag wins


def test_n_cpu_moe_past_the_layer_count_is_every_layer_in_one_pattern(moe):
    args = build_parser().parse_args(["ask", "--model", str(moe), "--n-cpu-moe", "100000", "q"])
    settings = engine_settings(args, choose_model(str(moe), None, False))
    assert settings.overrides == experts_in_ram(None)  # not 100,000 patterns
    path = config_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'[models."{moe.name}"]\nn_cpu_moe = 99999999999999\n', encoding="utf-8")
    assert loaded_overrides(moe) == experts_of(range(MoeShape().layers))


@pytest.mark.parametrize(("override", "said"), [
    (r"(.*)*x$=CPU", "took over 5 s, so llama.cpp would hang loading it"),
    (r"blk\.(=CPU", "is not a valid pattern"),
    ("blk=CUDA7", "No buffer type 'CUDA7' in this llama.cpp build for --override-tensor; it has"),
    (r"(?<=blk)\.0=CPU", "llama.cpp could not use the tensor override pattern(s) (?<=blk)\\.0"),
    ("blk", "--override-tensor takes PATTERN=BUFFER"),
])
def test_a_bad_override_gets_one_sentence(moe, override, said):
    done = subprocess.run([sys.executable, "-m", "reflectchat", "ask", "--model", str(moe),
                           "--no-save", "--template", "chatml", "-ot", override, "q"],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "300"})
    said_lines = [line for line in done.stderr.splitlines() if line.startswith("reflectchat:")]
    assert done.returncode == 1 and len(said_lines) == 1 and said in said_lines[0]
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("n_ctx", [512, 2048, 8192])
@pytest.mark.parametrize("flash_attn", [False, True], ids=["fa-off", "fa-on"])
def test_the_plan_of_a_mixture_is_within_3_percent_of_what_llama_cpp_allocates(any_moe, n_ctx,
                                                                               flash_attn):
    shape = shape_from_gguf([any_moe])
    assert shape.n_ff == MoeShape().expert_ff * MoeShape().experts_used
    engine = LlamaEngine(any_moe, EngineSettings(n_ctx=n_ctx, flash_attn=flash_attn,
                                             overrides=experts_in_ram(2)))
    engine.close()
    actual = {key.split()[-1]: size for key, size in engine.buffers.items()}
    cpu = plan(shape, Hardware(16, 64 * GIB, 64 * GIB), n_ctx, flash_attn=flash_attn)
    assert shape.expert_bytes and sum(shape.expert_bytes) > 0.8 * shape.weights_bytes
    assert shape.weights_bytes == pytest.approx(actual["model"], rel=0.005)
    assert cpu.kv_bytes == pytest.approx(actual["KV"], rel=0.005)
    estimate = shape.weights_bytes + cpu.kv_bytes + cpu.compute_bytes + shape.n_vocab * 4
    assert estimate == pytest.approx(sum(actual.values()), rel=0.03)


def one_gpu(name: str, vram_gib: float, ram_gib: float) -> Hardware:
    return Hardware(16, int(ram_gib * GIB), int(ram_gib * GIB),
                    [GPU(name, "nvidia", int(vram_gib * GIB), int(vram_gib * GIB))], True,
                    ["cuda"])


def catalog_plan(model: str, hw: Hardware, n_ctx: int = 8192):
    entry = load_catalog().get(model)
    shape = shape_from_catalog(entry.arch, entry.quants[0].size)
    return shape, plan(shape, hw, n_ctx)


def test_a_mixture_keeps_every_layer_on_the_gpu_and_as_few_experts_in_ram_as_fit():
    hw = one_gpu("NVIDIA GeForce RTX 4090", 24, 64)
    shape, chosen = catalog_plan("gpt-oss-120b", hw)
    assert chosen.n_gpu_layers == shape.n_layer + 1  # every layer, the output layer too
    moved = chosen.experts_in_ram
    assert 0 < moved < shape.n_layer and chosen.label == f"experts of {moved}/36 layers in RAM"
    assert chosen.cards[0].bytes <= hw.gpus[0].free_bytes
    fewer = plan(shape, one_gpu("NVIDIA GeForce RTX 4090", 24 - 2.5, 64), 8192)
    assert fewer.experts_in_ram > moved  # less VRAM: more experts in RAM
    _, dense = catalog_plan("llama-3.3-70b-instruct", hw)
    assert dense.experts_in_ram == 0 and dense.verdict is Verdict.PARTIAL  # whole layers


@pytest.mark.parametrize(("model", "gpu", "vram", "ram_gbs", "measured"), [
    # gpt-oss-120b, --n-cpu-moe 36, an 8 GB GPU and an i9 (dual-channel DDR5, ~80 GB/s): ~25
    ("gpt-oss-120b", "NVIDIA GeForce RTX 4060", 8, 80, 25),
    # gpt-oss-20b on an 8 GB RTX 2080 (448 GB/s) with --n-cpu-moe 12, DDR4 (~45 GB/s): ~36
    ("gpt-oss-20b", "NVIDIA GeForce RTX 2080", 8, 45, 36),
])
def test_the_speed_bound_of_a_mixture_is_above_what_people_measure(model, gpu, vram, ram_gbs,
                                                                   measured):
    hw = one_gpu(gpu, vram, 64)
    if "2080" in gpu:  # not in the bandwidth table: its data sheet's 448 GB/s
        hw = Hardware(16, hw.ram_total_bytes, hw.ram_available_bytes,
                      [GPU(gpu, "nvidia", 8 * GIB, 8 * GIB, bandwidth=448e9)], True, ["cuda"])
    shape, chosen = catalog_plan(model, hw, 4096)
    assert chosen.experts_in_ram > 0
    bound = decode_bound(placement(shape, chosen), ram_gbs * 1e9)
    assert bound is not None and measured < bound < 4 * measured
    whole_layers = decode_bound(placement(shape, plan(shape, hw, 4096,
                                                      max_gpu_layers=shape.n_layer)),
                                ram_gbs * 1e9)
    assert whole_layers is not None and whole_layers < bound  # experts in RAM beat it



def test_models_names_a_mixture_and_its_placement(any_moe):
    moe = any_moe
    done = subprocess.run([sys.executable, "-m", "reflectchat", "models", str(moe), "--json"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    row = json.loads(done.stdout)
    assert (row["placement"], row["experts_in_ram_layers"]) == ("CPU only", 0)  # no GPU here
    shown = subprocess.run([sys.executable, "-m", "reflectchat", "models", str(moe)],
                           capture_output=True, text=True, timeout=120)
    assert "a mixture of experts: 2 of 16 experts a token" in shown.stdout
