"""What this machine has for running a model: CPU threads, RAM, and each GPU's memory.

NVIDIA GPUs through NVML (nvidia-ml-py), with `nvidia-smi` as a fallback; Apple Silicon's
unified memory with the share Metal lets the GPU wire (its working-set limit, or the
`iogpu.wired_limit_mb` override); AMD GPUs through sysfs (`mem_info_vram_total/_used`).
Every probe that fails just finds nothing, so a CPU-only machine reports "no GPU".
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from reflectchat.engine.llama_build import build_backends
from reflectchat.sizes import GIB

# Metal lets the GPU wire about 2/3 of RAM on small Macs and 3/4 from 36 GiB up (its
# recommendedMaxWorkingSetSize); `sudo sysctl iogpu.wired_limit_mb=N` raises it.
APPLE_SHARE_SMALL, APPLE_SHARE_LARGE, APPLE_LARGE_FROM = 2 / 3, 3 / 4, 36 * GIB
AMD_VENDOR = "0x1002"
# what plans leave to the system and other programs: an eighth of RAM, at least 2 GiB (plans
# use installed RAM less this, not what happens to be free, so advice does not move with it)
RESERVE_SHARE, RESERVE_MIN = 1 / 8, 2 * GIB


@dataclass(frozen=True)
class GPU:
    name: str
    vendor: str  # nvidia | apple | amd
    total_bytes: int
    free_bytes: int
    unified: bool = False  # shares RAM with the CPU (Apple Silicon)
    bandwidth: float | None = None  # memory bandwidth in bytes/s, where the driver says


@dataclass
class Hardware:
    cpu_threads: int
    ram_total_bytes: int
    ram_available_bytes: int
    gpus: list[GPU] = field(default_factory=list)
    build_offloads: bool = False  # the installed llama.cpp can put layers on a GPU
    build_backends: list[str] = field(default_factory=list)
    ram_reserve_bytes: int = 0  # left to the system and other programs by every plan

    @property
    def ram_plan_bytes(self) -> int:
        """The RAM plans may use: installed less the reserve (what is free now, where the
        system does not say what is installed)."""
        if not self.ram_total_bytes:
            return self.ram_available_bytes
        return max(self.ram_total_bytes - self.ram_reserve_bytes, 0)


def ram_reserve(total: int) -> int:
    """The share of `total` RAM plans leave to the system and other programs."""
    return max(int(total * RESERVE_SHARE), RESERVE_MIN) if total else 0


def command_output(*command: str) -> str | None:
    """A command's output, or None if it is missing or fails."""
    if shutil.which(command[0]) is None:
        return None
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def memory(meminfo: Path = Path("/proc/meminfo")) -> tuple[int, int]:
    """RAM total and available, in bytes (0, 0 when this system does not say)."""
    if meminfo.exists():
        values = {}
        for line in meminfo.read_text().splitlines():
            key, _, rest = line.partition(":")
            parts = rest.split()
            if parts and parts[0].isdigit():
                values[key] = int(parts[0]) * 1024  # kB
        total = values.get("MemTotal", 0)
        return total, values.get("MemAvailable", values.get("MemFree", 0))
    total = int(command_output("sysctl", "-n", "hw.memsize") or 0)  # macOS
    vm = command_output("vm_stat") or ""
    page = 16384 if platform.machine() == "arm64" else 4096
    free_pages = sum(int(line.split()[-1].rstrip("."))
                     for line in vm.splitlines()
                     if line.startswith(("Pages free", "Pages inactive", "Pages speculative")))
    return total, free_pages * page or total


def nvidia_gpus() -> list[GPU]:
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # no library, no driver, no device: NVML raises its own error kinds
        return _nvidia_smi_gpus()
    try:
        gpus = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            name = pynvml.nvmlDeviceGetName(handle)
            info = pynvml.nvmlDeviceGetMemoryInfo(handle)
            gpus.append(GPU(name.decode() if isinstance(name, bytes) else name, "nvidia",
                            int(info.total), int(info.free),
                            bandwidth=_nvml_bandwidth(pynvml, handle)))
        return gpus
    finally:
        pynvml.nvmlShutdown()


def _nvml_bandwidth(pynvml: object, handle: object) -> float | None:
    """Peak memory bandwidth from the bus width and the top memory clock: NVML's clock is
    half the transfer rate (GDDR and HBM move data on both edges)."""
    try:
        bus_bits = pynvml.nvmlDeviceGetMemoryBusWidth(handle)  # type: ignore[attr-defined]
        clock_mhz = pynvml.nvmlDeviceGetMaxClockInfo(  # type: ignore[attr-defined]
            handle, pynvml.NVML_CLOCK_MEM)  # type: ignore[attr-defined]
    except Exception:  # an old driver or library without these calls
        return None
    return peak_bandwidth(int(bus_bits), int(clock_mhz))


def peak_bandwidth(bus_bits: int, clock_mhz: int) -> float | None:
    return bus_bits / 8 * clock_mhz * 1e6 * 2 if bus_bits > 0 and clock_mhz > 0 else None


def _nvidia_smi_gpus() -> list[GPU]:
    out = command_output("nvidia-smi", "--query-gpu=name,memory.total,memory.free",
               "--format=csv,noheader,nounits")
    gpus = []
    for line in (out or "").splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
            gpus.append(GPU(parts[0], "nvidia", int(parts[1]) * 1024**2,
                            int(parts[2]) * 1024**2))
    return gpus


def amd_gpus(drm: Path = Path("/sys/class/drm")) -> list[GPU]:
    gpus = []
    for device in sorted(drm.glob("card[0-9]*/device")):
        try:
            if (device / "vendor").read_text().strip() != AMD_VENDOR:
                continue
            total = int((device / "mem_info_vram_total").read_text())
            used = int((device / "mem_info_vram_used").read_text())
        except (OSError, ValueError):
            continue
        name_file = device / "product_name"
        name = name_file.read_text().strip() if name_file.exists() else ""
        gpus.append(GPU(name or f"AMD GPU ({device.parent.name})", "amd", total, total - used))
    return gpus


def apple_gpu(ram_total: int) -> list[GPU]:
    if platform.system() != "Darwin" or platform.machine() != "arm64" or not ram_total:
        return []
    wired_mb = int((command_output("sysctl", "-n", "iogpu.wired_limit_mb") or "0").strip() or 0)
    share = APPLE_SHARE_LARGE if ram_total >= APPLE_LARGE_FROM else APPLE_SHARE_SMALL
    limit = wired_mb * 1024**2 if wired_mb > 0 else int(ram_total * share)
    chip = (command_output("sysctl", "-n", "machdep.cpu.brand_string") or "Apple Silicon").strip()
    return [GPU(f"{chip} (unified memory)", "apple", limit,
                min(limit, ram_total - ram_reserve(ram_total)), unified=True)]


def detect() -> Hardware:
    total, available = memory()
    offloads, backends = build_backends()
    gpus = nvidia_gpus() + amd_gpus() + apple_gpu(total)
    return Hardware(os.cpu_count() or 1, total, available, gpus, offloads, backends,
                    ram_reserve(total))


def detect_accelerator() -> tuple[str | None, list[str]]:
    """The machine's accelerator and its devices, in the order install.sh checks them."""
    if platform.system() == "Darwin" and platform.machine() == "arm64":
        return "metal", [platform.processor() or "Apple Silicon"]
    gpus = command_output("nvidia-smi", "-L")
    if gpus:
        return "cuda", [line.split(" (UUID")[0] for line in gpus.splitlines() if line.strip()]
    rocm = command_output("rocminfo")
    if rocm and "gfx" in rocm:
        names = sorted({w for w in rocm.split() if w.startswith("gfx") and w[3:4].isdigit()})
        return "rocm", names
    if command_output("vulkaninfo", "--summary") is not None:
        return "vulkan", []
    return None, []
