"""Which quant to run: quality floors, predicted speed, multi-GPU splits and the ★, on machines
described as llama.cpp and NVML would see them."""

from __future__ import annotations

import pytest

from reflectchat.models.advice import USABLE_TPS, best_pick
from reflectchat.models.catalog import load_catalog
from reflectchat.models.fit import Verdict, layer_cards, plan, shape_from_catalog
from reflectchat.models.hardware import GPU, Hardware, peak_bandwidth
from reflectchat.models.measured import Measurements, machine_key
from reflectchat.models.quality import bits_per_weight, loses_quality
from reflectchat.models.quant_plans import RAM_BANDWIDTH, Planner, fit_rows
from reflectchat.models.speed import decode_bound, gpu_bandwidth, placement
from reflectchat.sizes import GIB

GB = 10**9


def machine(ram_gib: float, *gpus: tuple[str, float], ram_gbs: float = 40) -> Hardware:
    """A machine whose RAM bandwidth is already measured (`ram_gbs`), so plans are exact."""
    cards = [GPU(name, "nvidia", int(g * GIB), int(g * GIB)) for name, g in gpus]
    hw = Hardware(16, int(ram_gib * GIB), int(ram_gib * GIB), cards, bool(cards), ["cuda"])
    Measurements().set_fact(machine_key(hw), RAM_BANDWIDTH, ram_gbs * GB)
    return hw


def rows_by_model(hw: Hardware) -> dict[str, list]:
    rows = fit_rows(hw, 8192)
    grouped: dict[str, list] = {}
    for row in rows:
        grouped.setdefault(row.group_key, []).append(row)
    return grouped


def test_bits_per_weight_and_the_quality_floor_on_the_70b_catalog():
    entry = load_catalog().get("llama-3.3-70b-instruct")
    params = shape_from_catalog(entry.arch, 1).params
    assert 70.0e9 < params < 71.0e9  # Llama 3 70B: 70.6B parameters
    bpw = {q.name: bits_per_weight(q.size, params) for q in entry.quants}
    assert bpw["Q4_K_M"] == pytest.approx(4.82, abs=0.02)
    assert bpw["IQ1_M"] == pytest.approx(1.9, abs=0.05)
    assert loses_quality(entry.quant("IQ1_M").size, params)
    assert not loses_quality(entry.quant("Q4_K_M").size, params)
    reflection = load_catalog().get("reflection-llama-3.1-70b")
    assert loses_quality(reflection.quant("Q2_K").size, params)  # 2.99 bpw
    assert not loses_quality(reflection.quant("Q3_K_S").size, params)  # 3.5 bpw
    small = load_catalog().get("deepseek-r1-distill-llama-8b")
    small_params = shape_from_catalog(small.arch, 1).params
    assert 7.9e9 < small_params < 8.1e9
    assert loses_quality(small.quant("Q3_K_M").size, small_params) is False
    assert loses_quality(small.quant("Q2_K").size, small_params)  # 3.2 bpw is a lot for 8B


def test_a_24_gib_machine_without_gpu_never_gets_a_low_quality_star():
    """The machine of the report: it used to get Llama 3.3 70B at IQ1_M."""
    models = rows_by_model(machine(24, ram_gbs=20))
    for rows in models.values():
        for row in rows:
            assert not (row.recommended and row.quality_loss)
    llama = models["llama-3.3-70b-instruct"]
    assert any(r.runs and r.quality_loss for r in llama)  # IQ1_M fits, but...
    assert not any(r.recommended for r in llama)  # ...no ★ for it
    best = best_pick([r for rows in models.values() for r in rows])
    assert best is not None and not best.quality_loss and best.reason
    # a mixture of experts runs here: Qwen3 30B A3B reads only its active experts' ~3B
    # parameters a token, faster than any dense model of its quality
    assert best.group_key == "qwen3-30b-a3b" and best.plan.verdict is Verdict.CPU_ONLY
    assert best.speed.decode_tps and best.speed.decode_tps > USABLE_TPS
    assert best.model is not None and best.model.format.value == "think"


def test_the_star_says_why_and_prefers_usable_speed():
    models = rows_by_model(machine(128, ("NVIDIA GeForce RTX 4090", 24)))
    star = next(r for r in models["qwq-32b"] if r.recommended)
    assert star.plan.verdict is Verdict.FULL_GPU and "fits fully on the GPU" in star.reason
    assert star.speed.decode_tps and star.speed.decode_tps > USABLE_TPS
    big = next(r for r in models["reflection-llama-3.1-70b"] if r.recommended)
    assert big.plan.verdict is Verdict.PARTIAL and not big.quality_loss
    assert "tok/s" in big.reason  # no 70B quant is fast here: it says so
    best = best_pick([r for rows in models.values() for r in rows])
    # the largest that still runs at a usable speed: gpt-oss 120B, a mixture of experts, its
    # layers on the GPU and the experts of some in RAM, ahead of every dense 70B
    assert best is not None and best.group_key == "gpt-oss-120b"
    assert best.speed.decode_tps and best.speed.decode_tps > USABLE_TPS
    assert "every layer on the GPU, experts of " in best.reason and "layers in RAM" in best.reason


def test_a_24_gib_gpu_with_64_gib_of_ram_is_offered_gpt_oss_120b_with_its_experts_in_ram():
    models = rows_by_model(machine(64, ("NVIDIA GeForce RTX 4090", 24)))
    [row] = models["gpt-oss-120b"]
    assert row.runs and row.plan.n_gpu_layers == 37  # 36 layers and the output layer
    assert 0 < row.plan.experts_in_ram < 36 and "layers in RAM" in row.plan.label
    dense = next(r for r in models["llama-3.3-70b-instruct"] if r.recommended)
    assert row.speed.decode_tps > 3 * dense.speed.decode_tps  # not a dense 70B at 3 tok/s


def test_decode_speed_is_bandwidth_over_bytes_read():
    # NVIDIA's H100 SXM data sheet: 3.35 TB/s, so with a 42.5 GB Q4_K_M at most ~79 tokens/s
    entry = load_catalog().get("reflection-llama-3.1-70b")
    shape = shape_from_catalog(entry.arch, entry.quant("Q4_K_M").size)
    hw = Hardware(32, 256 * GIB, 256 * GIB, [GPU("NVIDIA H100 80GB HBM3", "nvidia", 80 * GIB,
                                               80 * GIB)], True, ["cuda"])
    chosen = plan(shape, hw, 8192)
    assert chosen.verdict is Verdict.FULL_GPU
    bound = decode_bound(placement(shape, chosen), None)
    assert bound == pytest.approx(3350e9 / 42.5e9, rel=0.03)
    cpu = plan(shape, Hardware(32, 64 * GIB, 64 * GIB), 8192)
    assert decode_bound(placement(shape, cpu), 50e9) == pytest.approx(50e9 / 42.5e9, rel=0.03)
    assert decode_bound(placement(shape, cpu), None) is None  # unknown RAM speed: no figure


@pytest.mark.parametrize(("name", "gbs"), [
    ("NVIDIA GeForce RTX 4090", 1008), ("NVIDIA L40S", 864), ("NVIDIA L4", 300),
    ("NVIDIA H100 PCIe", 2000), ("NVIDIA H100 80GB HBM3", 3350),
    ("Apple M1 Max (unified memory)", 400), ("Apple M1 (unified memory)", 68),
    ("AMD Radeon RX 7900 XTX", 960), ("Some Unknown Card", None),
])
def test_gpu_bandwidth_by_name(name, gbs):
    found = gpu_bandwidth(GPU(name, "nvidia", GIB, GIB))
    assert found == (gbs * GB if gbs else None)


def test_nvml_figures_give_the_data_sheet_bandwidth():
    assert peak_bandwidth(5120, 2619) == pytest.approx(3.35e12, rel=0.01)  # H100 SXM
    assert peak_bandwidth(384, 10501) == pytest.approx(1.008e12, rel=0.01)  # RTX 4090
    assert peak_bandwidth(0, 1000) is None
    told = GPU("Renamed", "nvidia", GIB, GIB, bandwidth=123e9)
    assert gpu_bandwidth(told) == 123e9  # the driver's figure wins over the table


def test_layers_go_to_cards_as_llama_cpp_assigns_them():
    assert layer_cards(80, 81, [1, 1]) == [0] * 41 + [1] * 40  # output layer on the last card
    assert layer_cards(80, 81, [3, 1]).count(0) == 61
    assert layer_cards(80, 40, [1, 1]) == [0] * 20 + [1] * 20
    assert layer_cards(80, 0, [1, 1]) == []
    assert layer_cards(10, 11, [1, 0]) == [0] * 11  # a zero share gets nothing


def test_two_cards_each_hold_their_share_and_the_split_is_per_card():
    entry = load_catalog().get("reflection-llama-3.1-70b")
    two = Hardware(16, 128 * GIB, 128 * GIB, [GPU("A", "nvidia", 24 * GIB, 24 * GIB),
                                              GPU("B", "nvidia", 24 * GIB, 24 * GIB)],
                   True, ["cuda"])
    q4 = plan(shape_from_catalog(entry.arch, entry.quant("Q4_K_M").size), two, 8192)
    assert q4.verdict is Verdict.FULL_GPU  # 39.6 GiB over two 24 GiB cards, as users run it
    assert [c.output for c in q4.cards] == [False, True]
    shape = shape_from_catalog(entry.arch, entry.quant("Q5_K_M").size)
    even = plan(shape, two, 8192)
    assert even.verdict is Verdict.PARTIAL and len(even.cards) == 2
    assert all(c.bytes <= c.gpu.free_bytes for c in even.cards)
    assert abs(even.cards[0].layers - even.cards[1].layers) <= 1
    assert even.gpu_bytes == sum(c.bytes for c in even.cards)
    lopsided = plan(shape, two, 8192, tensor_split=[3, 1])
    # card A takes three quarters of the layers: it fills first, so fewer layers fit in all
    assert lopsided.cards[0].layers > 2 * lopsided.cards[1].layers
    assert lopsided.layers_on_gpu < even.layers_on_gpu
    assert all(c.bytes <= c.gpu.free_bytes for c in lopsided.cards)
    # one 48 GiB card holds more than two 24 GiB cards: each card pays its own compute buffer
    one = Hardware(16, 128 * GIB, 128 * GIB, [GPU("C", "nvidia", 48 * GIB, 48 * GIB)], True,
                   ["cuda"])
    assert plan(shape, one, 8192).layers_on_gpu >= even.layers_on_gpu


def test_a_memory_failure_caps_the_next_plan_until_a_bigger_load_works(tmp_path):
    hw = machine(64, ("NVIDIA GeForce RTX 4090", 24))
    entry = load_catalog().get("qwq-32b")
    shape = shape_from_catalog(entry.arch, entry.quant("Q4_K_M").size)
    planner = Planner(hw, 8192)
    first = planner.row(shape, "qwq-32b-q4_k_m.gguf", entry.quant("Q4_K_M").size, group="q",
                        group_key="q", quant_name="Q4_K_M", source="catalog", downloaded=False)
    assert first.plan.n_gpu_layers == 65 and first.plan.capped_at is None
    store, key = Measurements(), machine_key(hw)
    store.record_load(key, "qwq-32b-q4_k_m.gguf", 8192, 65, None)  # out of memory
    capped = planner.row(shape, "qwq-32b-q4_k_m.gguf", 1, group="q", group_key="q",
                         quant_name="Q4_K_M", source="catalog", downloaded=False)
    assert capped.plan.n_gpu_layers == 64 and capped.plan.capped_at == 64
    assert capped.plan.verdict is Verdict.PARTIAL
    store.record_load(key, "qwq-32b-q4_k_m.gguf", 4096, 30, None)  # a smaller context failed
    assert store.memory_cap(key, "qwq-32b-q4_k_m.gguf", 8192) == 29
    assert store.memory_cap(key, "qwq-32b-q4_k_m.gguf", 2048) is None  # not at a smaller one
    store.record_load(key, "qwq-32b-q4_k_m.gguf", 8192, 65, {"CUDA0 model": 1})
    assert store.memory_cap(key, "qwq-32b-q4_k_m.gguf", 8192) is None  # it fits after all
