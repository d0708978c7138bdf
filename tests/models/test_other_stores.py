"""Model stores other tools wrote may hold anything: FIFOs, links to devices, huge or deeply
nested manifests. Finding local models skips them, never hangs or grows without end, and still
finds the good models beside them."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from reflectchat.models.local_files import SMALL_FILE, find_local_models

DIGEST = "sha256:" + "ab" * 32


def gguf(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"GGUF" + bytes(60))
    return path


def manifest_for(digest: str) -> str:
    return json.dumps({"layers": [{"mediaType": "application/vnd.ollama.image.model",
                                   "digest": digest}]})


def found_within(home: Path, env: dict[str, str], seconds: float = 60) -> list:
    """The models found, run on a thread: a store that blocks fails the test, not the suite."""
    result: list = []
    worker = threading.Thread(target=lambda: result.append(find_local_models(env, home)),
                              daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), "finding local models blocked"
    return result[0]


@pytest.fixture
def stores(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    home = tmp_path / "home"
    ollama = home / ".ollama" / "models"
    manifests = ollama / "manifests" / "registry.ollama.ai" / "library"
    good_blob = gguf(ollama / "blobs" / DIGEST.replace(":", "-"))
    (manifests / "good").mkdir(parents=True)
    (manifests / "good" / "latest").write_text(manifest_for(DIGEST))
    (manifests / "fifo").mkdir()
    os.mkfifo(manifests / "fifo" / "latest")  # a manifest nobody will ever write
    fifo_digest = "sha256:" + "cd" * 32
    os.mkfifo(ollama / "blobs" / fifo_digest.replace(":", "-"))  # a blob that is a FIFO
    (manifests / "fifoblob").mkdir()
    (manifests / "fifoblob" / "latest").write_text(manifest_for(fifo_digest))
    (manifests / "nested").mkdir()
    (manifests / "nested" / "latest").write_text("[" * 100_000 + "]" * 100_000)
    (manifests / "zero").mkdir()
    (manifests / "zero" / "latest").symlink_to("/dev/zero")
    (manifests / "huge").mkdir()
    (manifests / "huge" / "latest").write_text(" " * (SMALL_FILE + 10) + manifest_for(DIGEST))
    (home / ".lmstudio-home-pointer").symlink_to("/dev/zero")  # LM Studio's pointer file
    assert good_blob.exists()
    return home, {}


def test_fifos_devices_and_nested_or_huge_manifests_are_skipped(stores):
    home, env = stores
    found = found_within(home, env)
    assert [m.name for m in found if m.source == "Ollama"] == ["good:latest"]


def test_bidi_controls_in_a_file_name_are_shown_not_obeyed(tmp_path):
    from reflectchat.untrusted import visible

    assert visible("gnp\u202e.exe") == "gnp\\u202e.exe"
    assert visible("a\u2066b\u2069c") == "a\\u2066b\\u2069c"
    assert visible("שלום עולם") == "שלום עולם"  # right-to-left text itself is untouched
