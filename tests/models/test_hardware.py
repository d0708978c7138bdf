"""Hardware detection: this machine for real, and GPU probes fed with simulated inputs (a
fake sysfs tree, a fake nvidia-smi on PATH, a fake /proc/meminfo)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from reflectchat.models.hardware import GPU, amd_gpus, memory, nvidia_gpus
from reflectchat.sizes import GIB


def test_hw_reports_this_machine():
    result = subprocess.run([sys.executable, "-m", "reflectchat", "hw", "--json"],
                            capture_output=True, text=True, timeout=60)
    report = json.loads(result.stdout)
    assert report["cpu_threads"] >= 1
    assert 0 < report["ram_available_bytes"] <= report["ram_total_bytes"]
    text = subprocess.run([sys.executable, "-m", "reflectchat", "hw"], capture_output=True,
                          text=True, timeout=60).stdout
    threads = report["llama_threads"]
    assert text.startswith(f"CPU: {report['cpu_threads']} threads\nllama.cpp threads: "
                           f"{threads['decode']} for answers, {threads['batch']} for prompts")
    assert 1 <= threads["decode"] <= threads["batch"] <= report["cpu_threads"]
    if not report["gpus"]:  # a CPU-only machine, like CI
        assert "GPU: no GPU found" in text
    assert ("cannot offload" in text) == (not report["build_offloads"])


def test_meminfo_is_read_in_bytes(tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       65536000 kB\nMemFree:         1000 kB\n"
                       "MemAvailable:   32768000 kB\nBuffers: 12 kB\n")
    assert memory(meminfo) == (65536000 * 1024, 32768000 * 1024)


def test_amd_gpus_come_from_sysfs(tmp_path):
    def card(n: int, vendor: str, total: int, used: int, name: str | None) -> None:
        device = tmp_path / f"card{n}" / "device"
        device.mkdir(parents=True)
        (device / "vendor").write_text(vendor + "\n")
        (device / "mem_info_vram_total").write_text(f"{total}\n")
        (device / "mem_info_vram_used").write_text(f"{used}\n")
        if name:
            (device / "product_name").write_text(name + "\n")

    card(0, "0x8086", 0, 0, None)  # an Intel iGPU: not ours to count
    card(1, "0x1002", 24 * GIB, 2 * GIB, "AMD Radeon RX 7900 XTX")
    card(2, "0x1002", 16 * GIB, 0, None)
    (tmp_path / "card1-DP-1").mkdir()  # connectors sit beside the cards
    assert amd_gpus(tmp_path) == [
        GPU("AMD Radeon RX 7900 XTX", "amd", 24 * GIB, 22 * GIB),
        GPU("AMD GPU (card2)", "amd", 16 * GIB, 16 * GIB),
    ]


def test_nvidia_smi_is_the_fallback_when_nvml_is_missing(tmp_path, monkeypatch):
    pynvml = pytest.importorskip("pynvml")
    try:
        pynvml.nvmlInit()
        pynvml.nvmlShutdown()
        pytest.skip("this machine has NVML: the fallback is not used")
    except pynvml.NVMLError:
        pass
    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\necho 'NVIDIA H100 80GB HBM3, 81559, 80987'\n"
                    "echo 'NVIDIA H100 80GB HBM3, 81559, 1024'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert nvidia_gpus() == [
        GPU("NVIDIA H100 80GB HBM3", "nvidia", 81559 * 1024**2, 80987 * 1024**2),
        GPU("NVIDIA H100 80GB HBM3", "nvidia", 81559 * 1024**2, 1024 * 1024**2),
    ]
