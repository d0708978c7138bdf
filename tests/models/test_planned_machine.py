"""Advice for a machine: planned against installed RAM less a stated reserve (stable while other
programs come and go), and for a machine that is not this one (`models --gpu --ram`)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from reflectchat.cli.models import ram_text, short_now
from reflectchat.models.advice import best_pick
from reflectchat.models.hardware import Hardware, ram_reserve
from reflectchat.models.measured import Measurements, machine_key
from reflectchat.models.quant_plans import RAM_BANDWIDTH, fit_rows
from reflectchat.sizes import GIB

README = Path(__file__).resolve().parents[2] / "README.md"


def models(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reflectchat", "models", *args],
                          capture_output=True, text=True, timeout=180,
                          env={**os.environ, "COLUMNS": "100"})


def test_the_star_does_not_move_with_the_ram_free_at_the_moment():
    """The report: gpt-oss 20B with 17.2 GiB free, Qwen3 30B A3B at 22.7 GiB, minutes apart."""
    total = int(23.5 * GIB)
    picks = []
    for free in (17.2, 22.7):
        hw = Hardware(2, total, int(free * GIB), [], False, [], ram_reserve(total))
        Measurements().set_fact(machine_key(hw), RAM_BANDWIDTH, 20e9)
        best = best_pick(fit_rows(hw, 8192))
        assert best is not None
        picks.append((best.group_key, best.quant_name, best.plan.ram_bytes))
    assert picks[0] == picks[1]
    assert hw.ram_plan_bytes == total - ram_reserve(total) == int(total * 7 / 8)
    tight = Hardware(2, total, int(17.2 * GIB), [], False, [], ram_reserve(total))
    assert "20.6 GiB for models (23.5 GiB less 2.9 GiB for the system; 17.2 GiB free now)" \
        in ram_text(tight)
    warning = short_now(tight, 19 * GIB)
    assert warning and "Free RAM now (17.2 GiB) is less than this needs (19.0 GiB)" in warning
    assert short_now(tight, 16 * GIB) is None
    assert ram_reserve(8 * GIB) == 2 * GIB  # a small machine keeps at least 2 GiB


def test_the_readme_example_is_planned_for_the_machine_it_names():
    """README: gpt-oss-120b on a 24 GiB GPU with 64 GiB RAM keeps the experts of N layers in
    RAM; planned from a laptop with neither, by naming them."""
    line = next(x for x in README.read_text().splitlines() if "models --gpu" in x and "MoE" in x)
    command = re.search(r"reflectchat models (.+?)\s+#", line).group(1)
    layers, of = map(int, re.search(r'"MoE (\d+)/(\d+) RAM"', line).groups())
    done = models("gpt-oss-120b", *_split(command), "--json")
    assert done.returncode == 0, done.stderr
    row = next(r for r in json.loads(done.stdout) if r["recommended"])
    assert (row["experts_in_ram_layers"], row["layers"]) == (layers, of)
    assert row["placement"] == f"experts of {layers}/{of} layers in RAM"
    assert [g["name"] for g in row["gpus"]] == ["RTX 3090 of 24 GiB"]
    assert row["decode"] == "estimated" and row["decode_tokens_per_s"] > 0  # its bandwidth
    shown = models("gpt-oss-120b", *_split(command))
    assert " ".join(shown.stdout.split()).startswith(
        "Planned for: RTX 3090 of 24 GiB; RAM 56.0 GiB for models (64.0 GiB less 8.0 GiB for "
        "the system)")
    assert all(len(line) <= 80 for line in shown.stdout.splitlines())
    assert "Best for that machine: gpt-oss 120B" in shown.stdout


def _split(command: str) -> list[str]:
    import shlex

    return shlex.split(command)


def test_several_cards_share_the_layers_and_each_is_listed():
    done = models("llama-3.3-70b-instruct", "--gpu", "24GiB", "--gpu", "RTX 4090", "--ram",
                  "32GiB", "--json")
    assert done.returncode == 0, done.stderr
    row = next(r for r in json.loads(done.stdout) if r["quant"] == "Q4_K_M")
    assert row["verdict"] == "full GPU"
    assert sorted(g["name"] for g in row["gpus"]) == ["RTX 4090 of 24 GiB", "a GPU of 24 GiB"]
    assert all(0 < g["bytes"] <= 24 * GIB for g in row["gpus"])
    assert sum(g["layers"] for g in row["gpus"]) == row["layers"]


@pytest.mark.parametrize(("flags", "said"), [
    (["--gpu", "RTX 9999"], "--gpu: 'RTX 9999' is not in the data-sheet table"),
    (["--gpu", "A100"], "the A100 comes in more than one memory size; say which"),
    (["--ram", "lots"], "--ram takes a memory size like 24GiB (up to 64 TiB), not 'lots'"),
    (["--ram", "9" * 400], "--ram takes a memory size like 24GiB"),
    (["--gpu", "0GiB"], "--gpu takes a memory size"),
])
def test_a_machine_that_cannot_be_planned_is_one_sentence(flags, said):
    done = models("qwq-32b", *flags)
    assert done.returncode == 1 and said in done.stderr
    assert "Traceback" not in done.stderr


def test_offline_a_model_too_big_for_the_memory_says_so_not_quality_loss():
    done = models("gpt-oss-120b", "--gpu", "8GiB", "--ram", "16GiB")
    assert done.returncode == 0, done.stderr
    assert "Nothing here fits that machine's memory: the smallest, gpt-oss 120B (MXFP4) " \
           "MXFP4, needs" in done.stdout.replace("\n  ", " ")
    assert "without quality loss" not in done.stdout
