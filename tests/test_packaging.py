"""packaging/: install.sh's choices for each accelerator (detection inputs simulated with fake
commands on PATH, --dry-run), `reflectchat doctor`, and the desktop entry. The real CPU install,
and the wheel and sdist in clean environments, run in CI through packaging/check_release.sh."""

from __future__ import annotations

import configparser
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
INSTALL = ROOT / "packaging" / "install.sh"

NVIDIA_SMI = """#!/bin/sh
if [ "$1" = "-L" ]; then echo "GPU 0: NVIDIA GeForce RTX 4090 (UUID: GPU-1234)"; exit 0; fi
echo "| NVIDIA-SMI 550.54.14   Driver Version: 550.54.14   CUDA Version: 12.4 |"
"""
NVCC = """#!/bin/sh
echo "Cuda compilation tools, release 12.4, V12.4.131"
"""
ROCMINFO = """#!/bin/sh
echo "  Name:                    gfx1100"
echo "  Name:                    gfx1100"
"""
VULKANINFO = "#!/bin/sh\necho 'GPU0: deviceName = AMD Radeon'\n"
MAC_UNAME = """#!/bin/sh
case "$1" in -s) echo Darwin ;; -m) echo arm64 ;; *) echo Darwin ;; esac
"""
OLD_PYTHON = """#!/bin/sh
case "$2" in *print*) echo 3.8 ;; *) exit 1 ;; esac
"""
RECORDER = "#!/bin/sh\necho \"$(basename \"$0\") $*\" >> \"$FAKE_LOG\"\n"


def fake_bin(tmp_path: Path, commands: dict[str, str]) -> Path:
    folder = tmp_path / "fakebin"
    folder.mkdir(exist_ok=True)
    for name, script in commands.items():
        path = folder / name
        path.write_text(script)
        path.chmod(0o755)
    return folder


def install(tmp_path: Path, *args: str, commands: dict[str, str] | None = None,
            python: str = sys.executable) -> subprocess.CompletedProcess[str]:
    """install.sh --dry-run with only /usr/bin and /bin besides the fake commands, so the
    machine's own GPU tools (if any) do not leak in."""
    folder = fake_bin(tmp_path, commands or {})
    env = {"PATH": f"{folder}:/usr/bin:/bin", "HOME": str(tmp_path / "home"),
           "FAKE_LOG": str(tmp_path / "log")}
    return subprocess.run(["bash", str(INSTALL), "--dry-run", "--python", python, *args],
                          capture_output=True, text=True, env=env, timeout=60)


def test_cpu_machine_gets_a_plain_build_in_a_venv(tmp_path):
    result = install(tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Accelerator: CPU only (detected)" in out
    assert "Installer: a virtual environment in" in out
    assert "CMAKE_ARGS" not in out and "--no-cache-dir" not in out
    assert f"-m pip install --upgrade {ROOT}" in out  # this checkout
    assert f"ln -sf {tmp_path}/home/.local/share/reflectchat/venv/bin/reflectchat" in out
    assert out.rstrip().endswith("Dry run: nothing was changed.")
    assert not (tmp_path / "home").exists()  # nothing was done


def test_nvidia_gpu_gets_a_cuda_build_that_skips_the_wheel_cache(tmp_path):
    result = install(tmp_path, commands={"nvidia-smi": NVIDIA_SMI, "nvcc": NVCC})
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert ("Accelerator: NVIDIA CUDA (toolkit 12.4, driver supports CUDA 12.4; GPU 0: NVIDIA "
            "GeForce RTX 4090) (detected)") in out
    assert (f'CMAKE_ARGS="-DGGML_CUDA=on" {tmp_path}/home/.local/share/reflectchat/venv/bin/'
            f"python -m pip install --upgrade --no-cache-dir --force-reinstall {ROOT}") in out


def test_nvidia_gpu_without_the_cuda_toolkit_is_refused_clearly(tmp_path):
    result = install(tmp_path, commands={"nvidia-smi": NVIDIA_SMI})
    assert result.returncode == 1
    assert "needs the CUDA toolkit (nvcc)" in result.stderr and "--cpu" in result.stderr


@pytest.mark.parametrize(("commands", "flags", "what"), [
    ({"uname": MAC_UNAME}, "-DGGML_METAL=on", "Apple Metal"),
    ({"rocminfo": ROCMINFO}, "-DGGML_HIP=on -DAMDGPU_TARGETS=gfx1100", "AMD ROCm (gfx1100)"),
    ({"vulkaninfo": VULKANINFO}, "-DGGML_VULKAN=on", "Vulkan"),
], ids=["metal", "rocm", "vulkan"])
def test_other_accelerators_get_their_build_flags(tmp_path, commands, flags, what):
    result = install(tmp_path, commands=commands)
    assert result.returncode == 0, result.stderr
    assert f"Accelerator: {what} (detected)" in result.stdout
    assert f'CMAKE_ARGS="{flags}"' in result.stdout


def test_an_option_overrides_the_detection(tmp_path):
    result = install(tmp_path, "--cpu", commands={"nvidia-smi": NVIDIA_SMI, "nvcc": NVCC})
    assert "Accelerator: CPU only (chosen with --cpu)" in result.stdout
    assert "CMAKE_ARGS" not in result.stdout
    vulkan = install(tmp_path, "--vulkan")
    assert 'CMAKE_ARGS="-DGGML_VULKAN=on"' in vulkan.stdout


@pytest.mark.parametrize(("tool", "expected"), [
    ("uv", "uv tool install --force --python {py} --no-cache --reinstall-package "
           "llama-cpp-python {root}"),
    ("pipx", "pipx install --force --python {py} --pip-args=--no-cache-dir {root}"),
])
def test_uv_or_pipx_is_used_when_present(tmp_path, tool, expected):
    result = install(tmp_path, commands={tool: RECORDER, "nvidia-smi": NVIDIA_SMI, "nvcc": NVCC})
    assert result.returncode == 0, result.stderr
    assert f"Installer: {'uv tool' if tool == 'uv' else 'pipx'}" in result.stdout
    assert expected.format(py=sys.executable, root=ROOT) in result.stdout
    assert not (tmp_path / "log").exists()  # dry run: the tool was not called


def test_old_python_is_refused(tmp_path):
    old = fake_bin(tmp_path, {"python3.8": OLD_PYTHON}) / "python3.8"
    result = install(tmp_path, python=str(old))
    assert result.returncode == 1
    assert "reflectchat needs Python >= 3.10" in result.stderr and "is 3.8" in result.stderr


def test_desktop_entry_is_installed_with_its_icon(tmp_path):
    result = install(tmp_path, "--desktop")
    data = f"{tmp_path}/home/.local/share"
    assert f"cp {ROOT}/packaging/linux/reflectchat.desktop {data}/applications/" in result.stdout
    assert (f"cp {ROOT}/packaging/linux/reflectchat.svg "
            f"{data}/icons/hicolor/scalable/apps/reflectchat.svg") in result.stdout


def test_the_desktop_entry_opens_reflectchat_in_a_terminal():
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str  # keys are case-sensitive
    entry.read(ROOT / "packaging" / "linux" / "reflectchat.desktop")
    section = entry["Desktop Entry"]
    assert (section["Type"], section["Exec"], section["Terminal"], section["Icon"]) == \
        ("Application", "reflectchat", "true", "reflectchat")
    assert section["Categories"].endswith(";")
    assert (ROOT / "packaging" / "linux" / "reflectchat.svg").read_text().startswith("<svg")


def doctor(tmp_path: Path, commands: dict[str, str]) -> subprocess.CompletedProcess[str]:
    folder = fake_bin(tmp_path, commands)
    env = {**os.environ, "PATH": f"{folder}:/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "reflectchat", "doctor", "--json"],
                          capture_output=True, text=True, env=env, timeout=60)


def test_doctor_finds_a_gpu_the_build_cannot_use_and_gives_the_fix(tmp_path):
    result = doctor(tmp_path, {"nvidia-smi": NVIDIA_SMI})
    report = json.loads(result.stdout)
    assert result.returncode == 1
    assert report["accelerator"] == "cuda" and report["devices"] == [
        "GPU 0: NVIDIA GeForce RTX 4090"]
    assert report["build_offloads"] is False  # this machine's build is CPU-only
    assert "NVIDIA CUDA" in report["problem"] and "CPU only" in report["problem"]
    assert report["fix"] == (f'CMAKE_ARGS="-DGGML_CUDA=on" {sys.executable} -m pip install '
                             f"--force-reinstall --no-deps --no-cache-dir "
                             f"llama-cpp-python=={report['llama_cpp_python']}")


def test_doctor_is_content_on_a_cpu_only_machine(tmp_path):
    result = doctor(tmp_path, {})
    report = json.loads(result.stdout)
    assert result.returncode == 0 and report["accelerator"] is None and report["problem"] is None
    text = subprocess.run([sys.executable, "-m", "reflectchat", "doctor"], capture_output=True,
                          text=True, env={**os.environ, "PATH": "/usr/bin:/bin"}, timeout=60)
    assert "OK: no GPU was found, and the CPU build is the right one" in text.stdout


def test_the_package_has_no_symlinks_and_finds_its_data_files():
    from reflectchat.paths import builtin_themes_dir, catalog_file

    package = ROOT / "reflectchat"
    assert [p for p in package.rglob("*") if p.is_symlink()] == []
    assert catalog_file().read_text(encoding="utf-8").startswith(("#", "["))
    assert {p.name for p in builtin_themes_dir().glob("*.toml")} >= {"reflect-dark.toml"}
