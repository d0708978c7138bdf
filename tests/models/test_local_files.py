"""GGUFs other tools downloaded: each tool's layout built on disk as that tool writes it, found,
planned from its own header and run in place."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.shaped_model import write_shaped_gguf

from reflectchat.models.local_files import find_local_models

SHAPE = dict(n_layer=2, n_embd=128, n_head=4, n_head_kv=2, n_ff=352, n_vocab=500)


def gguf(path: Path, **shape: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_shaped_gguf(path, **{**SHAPE, **shape})


def hub_file(root: Path, repo: str, name: str, **shape: int) -> Path:
    """The hub cache layout: the file is a blob, the snapshot a symlink to it."""
    folder = root / f"models--{repo.replace('/', '--')}"
    blob = gguf(folder / "blobs" / "tmp.gguf", **shape)
    digest = hashlib.sha256(blob.read_bytes()).hexdigest()
    blob = blob.rename(blob.with_name(digest))
    (folder / "refs").mkdir(exist_ok=True)
    (folder / "refs" / "main").write_text("abc123")
    link = folder / "snapshots" / "abc123" / name
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(os.path.relpath(blob, link.parent))
    return link


def ollama_model(root: Path, name: str, tag: str, host: str = "registry.ollama.ai",
                 namespace: str = "library", **shape: int) -> Path:
    blob = gguf(root / "blobs" / "tmp", **shape)
    digest = hashlib.sha256(blob.read_bytes()).hexdigest()
    blob = blob.rename(root / "blobs" / f"sha256-{digest}")
    config = root / "blobs" / ("sha256-" + "0" * 64)
    config.write_text("{}")  # the config layer: JSON, not a GGUF
    manifest = root / "manifests" / host / namespace / name / tag
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text(json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                   "digest": "sha256:" + "0" * 64, "size": 2},
        "layers": [
            {"mediaType": "application/vnd.ollama.image.model", "digest": f"sha256:{digest}",
             "size": blob.stat().st_size},
            {"mediaType": "application/vnd.ollama.image.template",
             "digest": "sha256:" + "1" * 64, "size": 10},
        ],
    }))
    return blob


@pytest.fixture
def machine_with_tools(tmp_path: Path) -> tuple[dict[str, str], Path, dict[str, Path]]:
    """A home where the hub cache, llama.cpp, Ollama and LM Studio each left models."""
    home = tmp_path / "home"
    env = {"HF_HOME": str(tmp_path / "hf"), "OLLAMA_MODELS": str(tmp_path / "ollama"),
           "LLAMA_CACHE": str(tmp_path / "llamacpp")}
    made = {
        "hub": hub_file(tmp_path / "hf" / "hub", "someone/Tiny-GGUF", "Tiny-Q4_K_M.gguf"),
        "llama_hub": hub_file(tmp_path / "llamacpp", "ggml-org/Small-GGUF", "small-q8_0.gguf",
                              n_layer=3),
        "llama_flat": gguf(tmp_path / "llamacpp" / "bartowski_Old-GGUF_old-Q4_0.gguf"),
        "ollama": ollama_model(tmp_path / "ollama", "qwen3", "8b", n_layer=5),
        "ollama_user": ollama_model(tmp_path / "ollama", "thinker", "latest", host="hf.co",
                                    namespace="someone"),
    }
    studio = tmp_path / "studio-home"
    home.mkdir()
    (home / ".lmstudio-home-pointer").write_text(str(studio) + "\n")
    made["studio"] = gguf(studio / "models" / "lmstudio-community" / "R1-GGUF" / "r1-Q6_K.gguf",
                          n_layer=4)
    shard = studio / "models" / "pub" / "Split-GGUF" / "split-Q8_0-00001-of-00002.gguf"
    made["split"] = gguf(shard)
    gguf(shard.with_name("split-Q8_0-00002-of-00002.gguf"))
    gguf(studio / "models" / "pub" / "Split-GGUF" / "mmproj-split-f16.gguf")  # a projector
    broken = studio / "models" / "pub" / "Broken-GGUF" / "broken.gguf"
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"<html>not a model</html>")  # a failed download saved as .gguf
    return env, home, made


def test_every_tools_layout_is_found_once_with_its_own_names(machine_with_tools):
    env, home, made = machine_with_tools
    found = {m.path: m for m in find_local_models(env, home)}
    assert set(found) == set(made.values())
    named = {(m.source, m.model, m.name) for m in found.values()}
    assert named == {
        ("Hugging Face cache", "someone/Tiny-GGUF", "Tiny-Q4_K_M.gguf"),
        ("llama.cpp cache", "ggml-org/Small-GGUF", "small-q8_0.gguf"),
        ("llama.cpp cache", "bartowski/Old-GGUF", "bartowski_Old-GGUF_old-Q4_0.gguf"),
        ("Ollama", "qwen3", "qwen3:8b"),
        ("Ollama", "hf.co/someone/thinker", "hf.co/someone/thinker:latest"),
        ("LM Studio", "lmstudio-community/R1-GGUF", "r1-Q6_K.gguf"),
        ("LM Studio", "pub/Split-GGUF", "split-Q8_0-00001-of-00002.gguf"),
    }
    split = found[made["split"]]
    assert split.size == made["split"].stat().st_size * 2  # both shards counted


def test_lm_studio_home_falls_back_to_the_cache_folder_then_dot_lmstudio(tmp_path):
    home = tmp_path / "home"
    gguf(home / ".lmstudio" / "models" / "a" / "b" / "dot.gguf")
    assert [m.name for m in find_local_models({}, home) if m.source == "LM Studio"] == \
        ["dot.gguf"]
    gguf(home / ".cache" / "lm-studio" / "models" / "a" / "b" / "cached.gguf")
    assert [m.name for m in find_local_models({}, home) if m.source == "LM Studio"] == \
        ["cached.gguf"]


def test_nothing_installed_finds_nothing(tmp_path):
    assert find_local_models({}, tmp_path) == []


def run_models(env: dict[str, str], home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reflectchat", "models", *args],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env, "HOME": str(home), "COLUMNS": "80"})


def test_models_local_plans_each_file_from_its_header_and_runs_it_in_place(
        machine_with_tools, tmp_path):
    env, home, made = machine_with_tools
    result = run_models(env, home, "--local", "--json")
    assert result.returncode == 0, result.stderr
    rows = {Path(r["path"]): r for r in json.loads(result.stdout)}
    assert set(rows) == set(made.values())
    assert rows[made["ollama"]]["layers"] == 5 and rows[made["studio"]]["layers"] == 4
    assert rows[made["ollama"]]["quant"] == "qwen3:8b"
    for row in rows.values():
        assert row["verdict"] == "CPU only" and row["memory"] == "estimated"
        assert row["decode_tokens_per_s"] > 0 and row["decode"] == "estimated"
    table = run_models(env, home, "--local")
    assert table.returncode == 0, table.stderr
    assert "qwen3 (Ollama)" in table.stdout and "lmstudio-community/R1-GGUF (LM Studio)" \
        in table.stdout
    assert all(len(line) <= 80 for line in table.stdout.splitlines())
    # an Ollama blob has no .gguf name: it still runs where it lies
    ask = subprocess.run([sys.executable, "-m", "reflectchat", "ask", "--model",
                          str(made["ollama"]), "--max-tokens", "4", "--json", "hi"],
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, **env, "HOME": str(home)})
    assert ask.returncode == 0, ask.stderr
    assert json.loads(ask.stdout)["stats"]["completion_tokens"] <= 4


def test_catalog_files_in_the_hub_cache_stay_under_their_catalog_model(tmp_path):
    env = {"HF_HOME": str(tmp_path / "hf")}
    hub_file(tmp_path / "hf" / "hub", "Qwen/QwQ-32B-GGUF", "qwq-32b-q4_k_m.gguf")
    hub_file(tmp_path / "hf" / "hub", "other/Thing-GGUF", "thing.gguf")
    rows = json.loads(run_models(env, tmp_path, "--local", "--json").stdout)
    assert [Path(r["path"]).name for r in rows] == ["thing.gguf"]
    catalog = json.loads(run_models(env, tmp_path, "--json").stdout)
    assert [(r["model"], r["quant"]) for r in catalog if r["downloaded"]] == \
        [("qwq-32b", "Q4_K_M")]
