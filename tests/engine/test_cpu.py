"""The CPU thread default follows llama.cpp's: one decode thread per physical core this process
may use, every usable logical CPU for prompts, within a cgroup quota. Each case lays out the
sysfs topology and cgroup files a real machine of that kind has."""

from __future__ import annotations

from pathlib import Path

import pytest

from reflectchat.engine import cpu as cpu_module
from reflectchat.engine.cpu import (
    Repack,
    default_threads,
    has_amx,
    repack_default,
    repacked_bytes,
    repacked_types,
)


def machine(root: Path, siblings: list[str], cpu_max: str | None = None,
            v1_quota: tuple[int, int] | None = None) -> tuple[Path, Path]:
    """A sysfs CPU folder (cpuN/topology/core_cpus_list = that CPU's core siblings) and a
    cgroup folder with a v2 `cpu.max` or v1 quota files."""
    sysfs, cgroup = root / "cpu", root / "cgroup"
    for cpu, listed in enumerate(siblings):
        topology = sysfs / f"cpu{cpu}" / "topology"
        topology.mkdir(parents=True)
        (topology / "core_cpus_list").write_text(listed + "\n")
    cgroup.mkdir()
    if cpu_max is not None:
        (cgroup / "cpu.max").write_text(cpu_max + "\n")
    if v1_quota is not None:
        (cgroup / "cpu").mkdir()
        (cgroup / "cpu" / "cpu.cfs_quota_us").write_text(f"{v1_quota[0]}\n")
        (cgroup / "cpu" / "cpu.cfs_period_us").write_text(f"{v1_quota[1]}\n")
    return sysfs, cgroup


@pytest.fixture(autouse=True)
def not_hybrid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No E-cores unless a test lays them out (this machine's own /sys/devices left alone)."""
    devices = tmp_path / "devices"
    devices.mkdir()
    monkeypatch.setattr(cpu_module, "SYSFS_DEVICES", devices)
    return devices


# 8 cores with 2 hardware threads each, numbered as Linux does on x86: CPU n and n+8 share a core
SMT_16 = [f"{n % 8},{n % 8 + 8}" for n in range(16)]


def test_a_two_core_vm_without_smt_decodes_on_both_cores(tmp_path):
    """The reporter's machine: llama-cpp-python's cpu_count() // 2 gave 1 thread, a third
    slower than llama.cpp's 2."""
    sysfs, cgroup = machine(tmp_path, ["0", "1"], cpu_max="max 100000")
    counts = default_threads({0, 1}, sysfs, cgroup)
    assert (counts.decode, counts.batch) == (2, 2)


def test_hyperthreads_are_not_counted_for_decoding_but_are_for_prompts(tmp_path):
    sysfs, cgroup = machine(tmp_path, SMT_16)
    counts = default_threads(set(range(16)), sysfs, cgroup)
    assert (counts.decode, counts.batch) == (8, 16)
    assert "physical cores" in counts.text()


def test_cpu_affinity_limits_both_counts(tmp_path):
    """taskset -c 0,8,1: two threads of core 0 and one of core 1."""
    sysfs, cgroup = machine(tmp_path, SMT_16)
    counts = default_threads({0, 8, 1}, sysfs, cgroup)
    assert (counts.decode, counts.batch) == (2, 3)


def test_a_cgroup_v2_quota_caps_the_threads(tmp_path):
    """docker --cpus=2.5 on 16 CPUs: 3 threads, not 8 fighting over 2.5 CPUs of time."""
    sysfs, cgroup = machine(tmp_path, SMT_16, cpu_max="250000 100000")
    counts = default_threads(set(range(16)), sysfs, cgroup)
    assert (counts.decode, counts.batch) == (3, 3)
    assert "cgroup quota of 2.5 CPUs" in counts.text()


def test_a_cgroup_v1_quota_caps_the_threads_and_minus_one_means_none(tmp_path):
    sysfs, cgroup = machine(tmp_path / "a", SMT_16, v1_quota=(100000, 100000))
    assert default_threads(set(range(16)), sysfs, cgroup).batch == 1
    sysfs, cgroup = machine(tmp_path / "b", SMT_16, v1_quota=(-1, 100000))
    assert default_threads(set(range(16)), sysfs, cgroup).batch == 16


def test_without_topology_each_cpu_counts_as_a_core(tmp_path):
    """macOS or a container without /sys: no sibling information, so no CPU is dropped."""
    counts = default_threads({0, 1, 2, 3}, tmp_path / "none", tmp_path / "none")
    assert (counts.decode, counts.batch) == (4, 4)


def test_this_process_gets_at_least_one_thread_of_each():
    counts = default_threads()
    assert 1 <= counts.decode <= counts.batch


def cpuinfo(tmp_path: Path, line: str) -> Path:
    path = tmp_path / f"cpuinfo-{abs(hash(line))}"
    path.write_text(f"processor\t: 0\nmodel name\t: test\n{line}\n\nprocessor\t: 1\n{line}\n")
    return path


def test_repacked_weights_are_off_on_cpus_with_amx_and_on_elsewhere(tmp_path):
    """AMX: llama.cpp #20824 (a crash decoding Gemma 3 on one Xeon) and slower decoding on
    another (docs/benchmarks.md); AMD EPYC with AVX-512: faster with them."""
    xeon = cpuinfo(tmp_path, "flags\t\t: fpu avx2 avx512f amx_bf16 amx_tile amx_int8")
    assert has_amx(xeon) and not repack_default(xeon)
    epyc = cpuinfo(tmp_path, "flags\t\t: fpu avx2 avx512f avx512_vnni")
    assert not has_amx(epyc) and repack_default(epyc)
    assert repack_default(tmp_path / "no-such-file")


def test_repacked_types_follow_the_cpu_features_llama_cpp_checks(tmp_path):
    avx2 = repacked_types(cpuinfo(tmp_path, "flags\t\t: fpu sse avx2"), built="AVX2 = 1")
    assert set(avx2) == {"Q4_0", "Q4_K", "IQ4_NL", "MXFP4"} and avx2["Q4_K"] == (Repack(8),)
    assert "Q2_K" in repacked_types(cpuinfo(tmp_path, "flags\t\t: avx2 avx512f"), built="")
    arm = repacked_types(cpuinfo(tmp_path, "Features\t: fp asimd asimddp i8mm"), built="")
    assert {"Q4_0", "Q4_K", "Q6_K", "Q8_0"} <= set(arm) and arm["Q4_0"] == (Repack(4),)
    xeon = cpuinfo(tmp_path, "flags\t\t: avx2 avx512f amx_tile")
    amx = repacked_types(xeon, built="AVX2 = 1 | AMX_INT8 = 1 | REPACK = 1")
    assert {"Q4_1", "Q5_K", "Q6_K", "IQ4_XS", "F16"} <= set(amx)
    assert len(amx["Q4_K"]) == 2  # AMX first, then the AVX2 layout where AMX cannot take it
    # a llama.cpp compiled without AMX never makes AMX copies, whatever the CPU has
    assert "Q6_K" not in repacked_types(xeon, built="AVX2 = 1 | REPACK = 1")
    assert repacked_types(cpuinfo(tmp_path, "flags\t\t: fpu sse2"), built="") == {}


def test_a_matrix_is_copied_by_the_first_rule_its_shape_fits(tmp_path):
    """AMX takes rows in multiples of 32 and whole K-quant blocks, and stores a sum per block
    beside Q8_0 (34-byte blocks become 38) and Q4_K (144 become 148); a Q4_K matrix AMX
    cannot take still gets the AVX2 layout, at its own size; other types are left mapped."""
    rules = repacked_types(cpuinfo(tmp_path, "flags\t\t: avx2 avx512f amx_tile"),
                           built="AMX_INT8 = 1")
    assert repacked_bytes(rules, "Q8_0", 64, 640, 34 * 64 * 20) == 38 * 64 * 20
    assert repacked_bytes(rules, "Q4_K", 640, 1024, 144 * 640 * 4) == 148 * 640 * 4
    assert repacked_bytes(rules, "Q4_K", 264, 1024, 144 * 264 * 4) == 144 * 264 * 4
    assert repacked_bytes(rules, "Q6_K", 264, 1024, 210 * 264 * 4) == 0
    assert repacked_bytes(rules, "Q5_0", 640, 1024, 22 * 640 * 32) == 0
    assert repacked_bytes(rules, "F32", 1, 640, 2560) == 0


def test_an_intel_hybrid_cpu_decodes_on_its_performance_cores_only(tmp_path, not_hybrid):
    """A Core i7-13700: 8 P-cores with 2 threads each (CPUs 0-15, siblings adjacent) and 8
    E-cores (16-23). llama.cpp decodes on the 8 P-cores: an E-core slows every step."""
    siblings = [f"{n - n % 2}-{n - n % 2 + 1}" for n in range(16)] + [str(n) for n in
                                                                       range(16, 24)]
    sysfs, cgroup = machine(tmp_path, siblings)
    (not_hybrid / "cpu_core").mkdir()
    (not_hybrid / "cpu_core" / "cpus").write_text("0-15\n")
    (not_hybrid / "cpu_atom").mkdir()
    (not_hybrid / "cpu_atom" / "cpus").write_text("16-23\n")
    counts = default_threads(set(range(24)), sysfs, cgroup)
    assert (counts.decode, counts.batch) == (8, 24)
    assert "8 efficiency cores left out, as llama.cpp does" in counts.text()
    only_e = default_threads(set(range(16, 24)), sysfs, cgroup)  # taskset to the E-cores
    assert (only_e.decode, only_e.batch) == (8, 8)
