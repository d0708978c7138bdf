"""Measured truth: what llama.cpp allocated and how fast it answered, recorded on real loads and
answers, and used by the next plan in place of the estimate."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.shaped_model import write_shaped_gguf

from reflectchat.demo.scripted_model import Script
from reflectchat.engine.cpu import repacked_types
from reflectchat.engine.llama import EngineSettings
from reflectchat.models.fit import GPU_MARGIN, RAM_MARGIN, plan, shape_from_gguf
from reflectchat.models.hardware import detect
from reflectchat.models.loading import load_with_fallback, this_machine
from reflectchat.models.measured import Measurements
from reflectchat.models.quant_plans import Planner


@pytest.mark.parametrize("n_ctx", [2048, 8192])
def test_the_plan_for_the_real_gemma_is_within_3_percent_of_what_llama_cpp_allocates(
        real_model, n_ctx):
    engine = load_with_fallback(real_model, EngineSettings(n_ctx=n_ctx))
    engine.close()
    buffers = engine.buffers
    estimate = plan(shape_from_gguf([real_model]), detect(), n_ctx)
    kinds = {kind: sum(v for k, v in buffers.items() if k.endswith(kind))
             for kind in ("model", "KV", "compute", "output")}
    assert estimate.kv_bytes == pytest.approx(kinds["KV"], rel=0.03)
    assert estimate.compute_bytes == pytest.approx(kinds["compute"], rel=0.03)
    total = estimate.ram_bytes + estimate.gpu_bytes - RAM_MARGIN \
        - GPU_MARGIN * len(estimate.cards)
    assert total == pytest.approx(sum(buffers.values()), rel=0.03)


def test_a_load_is_recorded_and_the_next_plan_says_measured(real_model):
    n_ctx = 2048
    shape = shape_from_gguf([real_model])
    before = Planner(detect(), n_ctx).row(shape, real_model.name, real_model.stat().st_size,
                                          group="g", group_key="g", quant_name="q",
                                          source="file", downloaded=True)
    assert not before.memory_measured
    engine = load_with_fallback(real_model, EngineSettings(n_ctx=n_ctx))
    engine.close()
    record = Measurements().loaded(this_machine(), real_model.name, n_ctx, 0)
    assert record is not None and record.buffers == engine.buffers
    after = Planner(detect(), n_ctx).row(shape, real_model.name, real_model.stat().st_size,
                                         group="g", group_key="g", quant_name="q",
                                         source="file", downloaded=True)
    assert after.memory_measured
    assert after.plan.ram_bytes == sum(engine.buffers.values()) + RAM_MARGIN
    other_ctx = Planner(detect(), 4096).row(shape, real_model.name, 1, group="g",
                                            group_key="g", quant_name="q", source="file",
                                            downloaded=True)
    assert not other_ctx.memory_measured  # measured at 2048 tokens, not 4096


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reflectchat", *args], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "COLUMNS": "80"})


def test_answers_record_their_speed_and_models_shows_it_measured(make_model, tmp_path):
    model = make_model(Script("<|go|>", ["word " * 40]))
    planned = json.loads(run("models", str(model), "--json", "--ctx", "512").stdout)
    assert (planned["decode"], planned["memory"]) == ("estimated", "estimated")
    for _ in range(2):
        answer = run("ask", "--model", str(model), "--ctx", "512", "--json", "go " * 30)
        assert answer.returncode == 0, answer.stderr
    stats = json.loads(answer.stdout)["stats"]
    assert stats["completion_tokens"] >= 16 and stats["prompt_evaluated"] > 0
    shown = json.loads(run("models", str(model), "--json", "--ctx", "512").stdout)
    assert (shown["decode"], shown["memory"], shown["prompt"]) == \
        ("measured", "measured", "measured")
    assert shown["decode_tokens_per_s"] > 0 and shown["prompt_tokens_per_s"] > 0
    text = run("models", str(model), "--ctx", "512").stdout
    assert "tokens/s measured here" in text
    # another file on this machine: its prompt speed is estimated from the measured one
    other = write_shaped_gguf(tmp_path / "other.gguf", n_layer=2, n_embd=128, n_head=4,
                              n_head_kv=2, n_ff=352, n_vocab=500)
    guessed = json.loads(run("models", str(other), "--json", "--ctx", "512").stdout)
    assert guessed["prompt"] == "estimated" and guessed["prompt_tokens_per_s"] > 0


def test_an_unwritable_store_loses_nothing_but_the_measurement(tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("")
    measurements = Measurements(blocked / "measurements.db")  # its folder is a file
    measurements.record_load("m", "f.gguf", 512, 0, {"CPU KV": 1})
    assert measurements.loaded("m", "f.gguf", 512, 0) is None
    assert measurements.memory_cap("m", "f.gguf", 512) is None
    assert Path(blocked).read_text() == ""
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database at all, " * 100)  # a damaged file
    damaged = Measurements(garbage)
    damaged.record_speed("m", "f.gguf", 512, 0, "cpu", 1, (20, 1.0), (20, 1.0))
    assert damaged.speed("m", "f.gguf", 0) is None and damaged.fact("m", "x") is None


@pytest.mark.skipif(not repacked_types(), reason="llama.cpp repacks no weight type on this CPU")
def test_repacked_copies_are_planned_as_llama_cpp_allocates_them(real_model):
    """With repacking on, llama.cpp copies this CPU's repackable matrices (Gemma's Q4_K ones,
    on x86 with AVX2) beside the mapped file; the plan counts exactly those bytes, and with
    repacking off there is no copy."""
    shape = shape_from_gguf([real_model])
    extra = {}
    for repack in (True, False):
        engine = load_with_fallback(real_model, EngineSettings(n_ctx=2048, repack=repack))
        engine.close()
        extra[repack] = sum(v for k, v in engine.buffers.items()
                            if k.endswith(" model") and k != "CPU_Mapped model")
    assert extra[False] == 0
    assert extra[True] == pytest.approx(shape.repack_bytes(shape.n_layer, True), rel=0.01)
    hw = detect()
    on, off = plan(shape, hw, 2048, repack=True), plan(shape, hw, 2048, repack=False)
    assert on.repack and not off.repack
    assert on.ram_bytes - off.ram_bytes == shape.repack_bytes(shape.n_layer, True)


def test_damaged_measurements_are_ignored_never_a_crash_or_a_negative_size(tmp_path):
    """Text, negative, huge and not-a-number cells, as a damaged or hand-edited file has."""
    import sqlite3

    measured = Measurements(tmp_path / "m.db")
    measured.set_fact("box", "ram_bandwidth", 40e9)  # creates the tables
    db = sqlite3.connect(tmp_path / "m.db")
    for layers, buffers in [("many", '{"CPU model": 5}'), (3, '{"CPU model": -99e9}'),
                            (4, '{"CPU model": "big"}'), (5, "[[[[[["), (6, '{"x": 1e400}')]:
        db.execute("INSERT INTO loads (at, machine, file, n_ctx, gpu_layers, outcome, buffers) "
                   "VALUES (1, 'box', 'f', 2048, ?, 'ok', ?)", (layers, buffers))
    db.execute("INSERT INTO loads (at, machine, file, n_ctx, gpu_layers, outcome) VALUES "
               "(2, 'box', 'f', 2048, 'text', 'out_of_memory')")
    for row in [(64, "text", "many", 1.0), (64, -1.0, 64, -2.0), (1e30, 1.0, 64, 1e-300),
                (-5, 1.0, 64, float("inf"))]:  # every rate damaged somewhere
        db.execute("INSERT INTO speeds (at, machine, file, n_ctx, gpu_layers, placement, "
                   "params, prompt_tokens, prompt_s, decode_tokens, decode_s) VALUES "
                   "(1, 'box', 'f', 2048, 0, 'cpu', -5, ?, ?, ?, ?)", row)
    db.execute("INSERT OR REPLACE INTO facts VALUES ('box', 'ram_bandwidth', 'fast', 1)")
    db.execute("INSERT OR REPLACE INTO facts VALUES ('box', 'other', -1e300, 1)")
    db.commit()
    db.close()
    for layers in (3, 4, 5, 6):  # damaged buffers: planned as if never loaded
        assert measured.loaded("box", "f", 2048, layers) is None
    assert measured.memory_cap("box", "f", 2048) is None
    assert measured.speed("box", "f", 0) is None
    assert measured.prompt_speeds("box", "cpu") == []
    assert measured.fact("box", "ram_bandwidth") is None
    assert measured.fact("box", "other") is None


def test_a_machine_measures_its_ram_bandwidth_once_and_reads_it_back(tmp_path):
    """The first plan on a machine copies 256 MiB a few times to time its RAM; the figure is
    kept, and the next plan (another process, a week later) reads it instead."""
    from reflectchat.models.measured import machine_key
    from reflectchat.models.quant_plans import RAM_BANDWIDTH

    hw = detect()
    fresh = Measurements(tmp_path / "measurements.db")
    assert fresh.fact(machine_key(hw), RAM_BANDWIDTH) is None
    measured = Planner(hw, 4096, measurements=fresh).ram_bandwidth
    assert 1e8 < measured < 1e13  # bytes/s: a plausible memory copy
    assert fresh.fact(machine_key(hw), RAM_BANDWIDTH) == measured
    assert Planner(hw, 4096, measurements=fresh).ram_bandwidth == measured  # read, not timed
