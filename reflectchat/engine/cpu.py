"""How llama.cpp uses this CPU when the user does not say: threads and repacked weights.

Threads, as llama.cpp's own tools
choose (`cpu_get_num_math` in its `common/common.cpp`, https://github.com/ggml-org/llama.cpp):
one thread per physical core for decoding, since a core's second hardware thread shares its
vector units and memory port and only adds contention. Prompt processing is compute-bound
batched matrix work, so it gets every logical CPU.

llama-cpp-python's own default is `os.cpu_count() // 2` for decoding, which assumes two
hardware threads per core: on a machine without SMT (most cloud VMs, many AMD and ARM parts) it
uses half the cores. Both counts here are limited to what this process may actually use: its CPU
affinity (`taskset`, containers' cpusets) and a cgroup CPU quota (`docker --cpus`).

Repacked weights ("extra buffer types"): llama.cpp copies the CPU layers' matrices into a layout
its vector kernels read faster (CPU_REPACK, or AMX tiles on Intel CPUs with AMX). Measured on
an AMD EPYC without AMX, decode is faster with them (docs/benchmarks.md); on CPUs with AMX,
decoding some models crashes with them (https://github.com/ggml-org/llama.cpp/issues/20824:
Gemma 3 270M Q4_K_M segfaulted on our earlier Xeon). So they are on unless the CPU has AMX.
"""

from __future__ import annotations

import functools
import math
import os
import platform
import sys
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from reflectchat.engine.llama_cpp_api import system_info

SYSFS_CPU = Path("/sys/devices/system/cpu")
SYSFS_DEVICES = Path("/sys/devices")  # cpu_core and cpu_atom: a hybrid CPU's two kinds
CPUINFO = Path("/proc/cpuinfo")
CGROUP = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class ThreadCounts:
    decode: int  # n_threads: one per physical core available
    batch: int  # n_threads_batch: every logical CPU available
    why: str  # what limited them, for `hw`

    def text(self) -> str:
        return f"{self.decode} for answers, {self.batch} for prompts ({self.why})"


def allowed_cpus() -> set[int]:
    """The logical CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return set(os.sched_getaffinity(0))
    return set(range(os.cpu_count() or 1))


def core_of(cpu: int, sysfs: Path) -> str:
    """The physical core a logical CPU belongs to, named by its hardware-thread siblings (the
    same text for every thread of one core); the CPU itself where sysfs does not say."""
    topology = sysfs / f"cpu{cpu}" / "topology"
    for name in ("core_cpus_list", "thread_siblings_list"):
        try:
            return (topology / name).read_text().strip()
        except OSError:
            continue
    return str(cpu)


def cgroup_cpu_limit(cgroup: Path) -> float | None:
    """The CPU quota of this process's cgroup in whole CPUs, or None without one (v2's
    `cpu.max` "QUOTA PERIOD", v1's `cpu.cfs_quota_us` / `cpu.cfs_period_us`)."""
    try:
        quota, period = (cgroup / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((cgroup / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((cgroup / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota_us / period_us if quota_us > 0 and period_us > 0 else None


def cpu_list(text: str) -> set[int]:
    """A kernel CPU list ("0-3,8,10-11") as CPU numbers; empty where it cannot be read."""
    found: set[int] = set()
    for part in text.strip().split(","):
        first, _, last = part.partition("-")
        try:
            found.update(range(int(first), int(last or first) + 1))
        except ValueError:
            return set()
    return found


def efficiency_cpus(devices: Path) -> set[int]:
    """An Intel hybrid CPU's E-cores (12th-14th generation Core, Core Ultra): the CPUs of the
    kernel's `cpu_atom` PMU; none on other CPUs."""
    try:
        return cpu_list((devices / "cpu_atom" / "cpus").read_text())
    except OSError:
        return set()


def default_threads(cpus: set[int] | None = None, sysfs: Path = SYSFS_CPU,
                    cgroup: Path = CGROUP, devices: Path | None = None) -> ThreadCounts:
    """llama.cpp's thread default for this process: physical cores to decode (on a hybrid
    CPU its performance cores only: llama.cpp's `cpu_get_num_math` leaves the E-cores out,
    as each decoding step waits for its slowest thread), logical CPUs for prompts, each
    capped by the cgroup quota (rounded up: a 1.5-CPU quota still runs 2)."""
    cpus = allowed_cpus() if cpus is None else cpus
    logical = max(1, len(cpus))
    slow = efficiency_cpus(SYSFS_DEVICES if devices is None else devices) & cpus
    fast = cpus - slow
    if not fast:  # only E-cores may be used: they are what there is
        fast, slow = cpus, set()
    physical = max(1, len({core_of(cpu, sysfs) for cpu in fast}))
    why = "physical cores" if physical < logical else "cores, no SMT"
    why = f"{why} available to this process"
    if slow:
        why = (f"performance cores available to this process; {len(slow)} efficiency cores "
               "left out, as llama.cpp does")
    quota = cgroup_cpu_limit(cgroup)
    if quota is not None and math.ceil(quota) < logical:
        cap = max(1, math.ceil(quota))
        return ThreadCounts(min(physical, cap), cap, f"a cgroup quota of {quota:g} CPUs")
    return ThreadCounts(physical, logical, why)


@functools.cache
def cpu_flags(cpuinfo: Path = CPUINFO) -> frozenset[str]:
    """The CPU's feature flags as Linux lists them ("flags" on x86, "Features" on ARM); on a
    Mac with Apple Silicon, the ARM features every M-series chip has; else none. Read once:
    every memory plan asks, and the CPU does not change while we run."""
    try:
        with cpuinfo.open(encoding="utf-8", errors="replace") as lines:
            for line in lines:
                if line.startswith(("flags", "Features")):
                    return frozenset(line.partition(":")[2].split())
    except OSError:
        pass
    if sys.platform == "darwin" and platform.machine() == "arm64":
        return frozenset({"asimddp"})
    return frozenset()


def has_amx(cpuinfo: Path = CPUINFO) -> bool:
    """Whether the CPU has Intel AMX (the `amx_tile` flag)."""
    return "amx_tile" in cpu_flags(cpuinfo)


@dataclass(frozen=True)
class Repack:
    """How llama.cpp copies a matrix of one weight type into a repacked buffer: only when its
    row count (and its row length, in elements) is a multiple of these, and the copy's size
    is the file's times `grows` (AMX stores a sum per block beside some types)."""
    rows: int
    cols: int = 1
    grows: Fraction = Fraction(1)

    def copied(self, rows: int, cols: int, size: int) -> int:
        """The bytes of the copy of a `rows` x `cols` matrix of `size` bytes; 0: not copied."""
        if rows % self.rows or cols % self.cols:
            return 0
        return int(size * self.grows)


# Weight types llama.cpp repacks, by CPU feature: its ggml-cpu/repack.cpp
# (`ggml_repack_get_optimal_repack_type`: rows in multiples of the interleave) and, where
# llama.cpp was built with AMX, ggml-cpu/amx (`supports_op`: rows in multiples of 32 and rows
# of whole blocks; `get_row_size`: the per-block sums it adds), which is tried first.
REPACK_X86_AVX2 = {kind: Repack(8) for kind in ("Q4_0", "Q4_K", "IQ4_NL", "MXFP4")}
REPACK_X86_AVX512 = {"Q2_K": Repack(8)}
REPACK_ARM_DOTPROD = {"Q4_0": Repack(4), "Q4_K": Repack(8), "Q5_K": Repack(8),
                      "Q6_K": Repack(8), "IQ4_NL": Repack(4), "MXFP4": Repack(4),
                      "Q8_0": Repack(4)}
REPACK_AMX = {"Q4_0": Repack(32, 32), "Q4_1": Repack(32, 32),
              "Q8_0": Repack(32, 32, Fraction(34 + 4, 34)),
              "Q4_K": Repack(32, 256, Fraction(144 + 4, 144)),
              "Q5_K": Repack(32, 256, Fraction(176 + 4, 176)),
              "Q6_K": Repack(32, 256), "IQ4_XS": Repack(32, 256, Fraction(136 + 2, 136)),
              "F16": Repack(32, 16)}
AMX_BUILT = "AMX_INT8 = 1"  # in llama.cpp's system info when it was compiled with AMX


def repacked_types(cpuinfo: Path = CPUINFO,
                   built: str | None = None) -> dict[str, tuple[Repack, ...]]:
    """The weight types llama.cpp may copy into repacked buffers on this CPU when repacking
    is on: each type's rules in the order llama.cpp tries them (the first whose shape fits
    takes the matrix). `built`: llama.cpp's system info (what it was compiled with)."""
    flags = cpu_flags(cpuinfo)
    plain: dict[str, Repack] = {}
    if "asimddp" in flags:
        plain.update(REPACK_ARM_DOTPROD)
    if "avx2" in flags:
        plain.update(REPACK_X86_AVX2)
    if "avx512f" in flags:
        plain.update(REPACK_X86_AVX512)
    amx: dict[str, Repack] = {}
    if "amx_tile" in flags and AMX_BUILT in (library_features() if built is None else built):
        amx = REPACK_AMX
    return {kind: tuple(rule for rule in (amx.get(kind), plain.get(kind)) if rule)
            for kind in amx.keys() | plain.keys()}


def repacked_bytes(rules: dict[str, tuple[Repack, ...]], kind: str, rows: int, cols: int,
                   size: int) -> int:
    """What llama.cpp copies of one matrix under `rules` (`repacked_types`): 0 if nothing."""
    for rule in rules.get(kind, ()):
        if copied := rule.copied(rows, cols, size):
            return copied
    return 0


@functools.cache
def library_features() -> str:
    """What llama.cpp was compiled with (its system info), read once."""
    return system_info()


def repack_default(cpuinfo: Path = CPUINFO) -> bool:
    """Repacked CPU weights on, except on CPUs with AMX (see the module's docstring)."""
    return not has_amx(cpuinfo)
