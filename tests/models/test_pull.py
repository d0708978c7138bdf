"""`reflectchat pull` against a local hub (tests/support/hub_server.py, via HF_ENDPOINT): the shared
HF cache, split files as one job, resuming after drops, resets and a killed process, sha256
checks, the disk check, and the hub's errors."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.hub_server import Hub, HubFile, HubServer
from support.shaped_model import write_shaped_gguf

from reflectchat.models.catalog import load_catalog
from reflectchat.sizes import size_text

QWQ = "Qwen/QwQ-32B-GGUF"
REFLECTION = "bartowski/Reflection-Llama-3.1-70B-GGUF"
Q8_FOLDER = "Reflection-Llama-3.1-70B-Q8_0/Reflection-Llama-3.1-70B-Q8_0"
Q8_SHARDS = [f"{Q8_FOLDER}-00001-of-00002.gguf", f"{Q8_FOLDER}-00002-of-00002.gguf"]


def payload(n: int, seed: int = 1) -> bytes:
    """`n` bytes that repeat every 251 (byte i is (31 i + seed) mod 251): no two files alike."""
    period = bytes((i * 31 + seed) % 251 for i in range(251))
    return (period * (n // 251 + 1))[:n]


@pytest.fixture
def hub() -> Iterator[tuple[Hub, HubServer]]:
    state = Hub(repos={
        QWQ: {"qwq-32b-q4_k_m.gguf": HubFile(payload(3_000_000))},
        REFLECTION: {Q8_SHARDS[0]: HubFile(payload(2_000_000, 2)),
                     Q8_SHARDS[1]: HubFile(payload(1_500_000, 3))},
    })
    with HubServer(state) as server:
        yield state, server


def pull(server: HubServer, *args: str, wait: bool = True):
    env = {**os.environ, "HF_ENDPOINT": server.url, "HF_HUB_OFFLINE": "0",
           "HF_HUB_DISABLE_XET": "1", "COLUMNS": "120"}
    command = [sys.executable, "-m", "reflectchat", "pull", *args]
    if not wait:
        return subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


def cached(repo: str, filename: str) -> Path | None:
    root = Path(os.environ["HF_HOME"]) / "hub" / f"models--{repo.replace('/', '--')}"
    refs = root / "refs" / "main"
    if not refs.exists():
        return None
    path = root / "snapshots" / refs.read_text() / filename
    return path if path.exists() else None


def gets(state: Hub, filename: str) -> list[str | None]:
    return [r for m, p, r in state.log if m == "GET" and p.endswith(filename)]


def partial_once_written(f: HubFile, process: subprocess.Popen, at_least: int) -> Path:
    """The file a running pull writes to, once it holds `at_least` bytes."""
    part = Path(os.environ["HF_HOME"]) / "hub" / "models--Qwen--QwQ-32B-GGUF" / "blobs" / \
        f"{f.sha256}.incomplete"
    deadline = time.monotonic() + 60
    while not (part.exists() and part.stat().st_size >= at_least):
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.05)
    return part


def test_a_split_quant_is_one_job_into_the_shared_cache(hub):
    state, server = hub
    result = pull(server, "reflection-llama-3.1-70b", "--quant", "Q8_0")
    assert result.returncode == 0, result.stderr
    assert "Downloaded and verified (sha256)" in result.stderr
    for shard, f in zip(Q8_SHARDS, state.repos[REFLECTION].values(), strict=True):
        path = cached(REFLECTION, shard)
        assert path is not None and path.is_symlink() and path.read_bytes() == f.data
    # huggingface_hub finds them (so does every tool sharing the cache), and so does --model
    check = subprocess.run([sys.executable, "-c", (
        "from huggingface_hub import try_to_load_from_cache as t; import sys; "
        f"print(t({REFLECTION!r}, {Q8_SHARDS[1]!r}))")], capture_output=True, text=True,
        env={**os.environ})
    assert check.stdout.strip() == str(cached(REFLECTION, Q8_SHARDS[1]))
    again = pull(server, "reflection-llama-3.1-70b", "--quant", "Q8_0")
    assert again.returncode == 0 and "already downloaded" in again.stderr
    assert len(gets(state, Q8_SHARDS[0])) == 1  # nothing fetched twice


@pytest.mark.parametrize("fault", ["drop", "reset"])
def test_a_broken_connection_is_resumed_from_the_bytes_on_disk(hub, fault):
    state, server = hub
    f = state.repos[QWQ]["qwq-32b-q4_k_m.gguf"]
    f.fault = fault
    result = pull(server, "qwq-32b", "--quant", "Q4_K_M")
    assert result.returncode == 0, result.stderr
    assert "1 interrupted transfer(s) resumed" in result.stderr
    ranges = gets(state, "qwq-32b-q4_k_m.gguf")
    assert ranges[0] is None and len(ranges) == 2
    resumed_from = int(ranges[1].removeprefix("bytes=").rstrip("-"))
    assert 0 < resumed_from <= len(f.data) // 2  # not from zero
    assert cached(QWQ, "qwq-32b-q4_k_m.gguf").read_bytes() == f.data


def test_a_killed_pull_continues_where_it_stopped(hub):
    state, server = hub
    f = state.repos[QWQ]["qwq-32b-q4_k_m.gguf"]
    f.fault = "slow"
    process = pull(server, "qwq-32b", "--quant", "Q4_K_M", wait=False)
    part = partial_once_written(f, process, 500_000)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(10)
    kept = part.stat().st_size
    f.fault = None
    result = pull(server, "qwq-32b", "--quant", "Q4_K_M")
    assert result.returncode == 0, result.stderr
    assert f"Continuing from {size_text(kept)} already on disk" in result.stderr
    assert gets(state, "qwq-32b-q4_k_m.gguf")[-1] == f"bytes={kept}-"
    assert cached(QWQ, "qwq-32b-q4_k_m.gguf").read_bytes() == f.data
    assert not part.exists()


def test_a_corrupted_download_is_deleted_and_said(hub):
    state, server = hub
    state.repos[QWQ]["qwq-32b-q4_k_m.gguf"].fault = "corrupt"
    result = pull(server, "qwq-32b", "--quant", "Q4_K_M")
    assert result.returncode == 1
    assert "does not match the hub's sha256" in result.stderr and "deleted" in result.stderr
    assert cached(QWQ, "qwq-32b-q4_k_m.gguf") is None
    blobs = Path(os.environ["HF_HOME"]) / "hub" / "models--Qwen--QwQ-32B-GGUF" / "blobs"
    assert list(blobs.iterdir()) == []


def test_not_enough_disk_space_is_refused_before_starting(hub):
    state, server = hub
    state.repos[QWQ]["qwq-32b-q4_k_m.gguf"].size_claim = 10**16  # 10 PB: no disk has it
    result = pull(server, "qwq-32b", "--quant", "Q4_K_M")
    assert result.returncode == 1
    assert "Not enough disk space" in result.stderr
    assert "9,313,225.7 GiB" in result.stderr  # 10^16 bytes
    assert gets(state, "qwq-32b-q4_k_m.gguf") == []


def test_hub_errors_are_clear(hub):
    state, server = hub
    state.gated.add(QWQ)
    gated = pull(server, "qwq-32b", "--quant", "Q4_K_M")
    assert gated.returncode == 1 and "is gated" in gated.stderr and "hf auth login" in gated.stderr
    state.gated.clear()
    del state.repos[QWQ]
    missing = pull(server, "qwq-32b", "--quant", "Q4_K_M")
    assert "There is no repository Qwen/QwQ-32B-GGUF" in missing.stderr
    state.repos[QWQ] = {}
    no_file = pull(server, "qwq-32b", "--quant", "Q4_K_M")
    assert "has no file qwq-32b-q4_k_m.gguf" in no_file.stderr
    unknown = pull(server, "no-such-model")
    assert unknown.returncode == 1 and "no-such-model" in unknown.stderr


def test_no_network_is_said(hub):
    _, server = hub
    server.shutdown()
    server.server_close()
    result = pull(server, "qwq-32b", "--quant", "Q4_K_M")
    assert result.returncode == 1 and "Cannot reach the Hugging Face Hub" in result.stderr


def test_auto_picks_the_quant_recommended_for_this_machine(hub):
    state, server = hub
    entry = load_catalog().get("qwq-32b")
    state.repos[QWQ] = {q.files[0]: HubFile(payload(100_000, i))
                        for i, q in enumerate(entry.quants)}
    rows = json.loads(subprocess.run([sys.executable, "-m", "reflectchat", "models", "--json"],
                                     capture_output=True, text=True, timeout=120).stdout)
    picked = [r["quant"] for r in rows if r["model"] == "qwq-32b" and r["recommended"]]
    result = pull(server, "qwq-32b")
    if picked:
        assert result.returncode == 0, result.stderr
        assert f"Chose {picked[0]} for this machine" in result.stderr
        assert cached(QWQ, entry.quant(picked[0]).files[0]) is not None
    else:
        assert result.returncode == 1 and "No quant of qwq-32b fits" in result.stderr


def test_plans_read_exact_sizes_from_the_hub_headers_before_download(hub, tmp_path):
    state, server = hub
    shaped = write_shaped_gguf(tmp_path / "m.gguf", n_layer=5, n_embd=256, n_head=4,
                               n_head_kv=2, n_ff=704, n_vocab=1000)
    state.repos[QWQ] = {"qwq-32b-q4_k_m.gguf": HubFile(shaped.read_bytes())}
    env = {**os.environ, "HF_ENDPOINT": server.url, "HF_HUB_OFFLINE": "0"}

    def models(**extra: str) -> tuple[dict, str]:
        result = subprocess.run([sys.executable, "-m", "reflectchat", "models", "qwq-32b",
                                 "--json"], capture_output=True, text=True, timeout=120,
                                env={**env, **extra})
        rows = {r["quant"]: r for r in json.loads(result.stdout)}
        return rows, result.stderr

    rows, _ = models()
    assert rows["Q4_K_M"]["sizes_from"] == "hub" and rows["Q4_K_M"]["layers"] == 5
    assert not rows["Q4_K_M"]["downloaded"]
    ranges = gets(state, "qwq-32b-q4_k_m.gguf")
    assert ranges and all(r and r.startswith("bytes=0-") for r in ranges)  # only the header
    assert rows["Q8_0"]["sizes_from"] == "catalog"  # not on this hub: the catalog's numbers
    before = len(state.log)
    rows, _ = models()
    assert rows["Q4_K_M"]["sizes_from"] == "hub"
    assert not [r for r in state.log[before:]  # the header was cached
                if r[0] == "GET" and r[1].endswith("qwq-32b-q4_k_m.gguf")]
    rows, err = models(HF_HUB_OFFLINE="1")
    assert rows["Q4_K_M"]["sizes_from"] == "catalog" and "Offline" in err


def test_a_disk_that_fills_mid_download_gets_one_sentence(hub):
    """The kernel's own ENOSPC: the partial file is /dev/full, where every write fails so."""
    state, server = hub
    f = state.repos[QWQ]["qwq-32b-q4_k_m.gguf"]
    blobs = Path(os.environ["HF_HOME"]) / "hub" / "models--Qwen--QwQ-32B-GGUF" / "blobs"
    blobs.mkdir(parents=True)
    (blobs / f"{f.sha256}.incomplete").symlink_to("/dev/full")
    result = pull(server, "qwq-32b", "--quant", "Q4_K_M")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "Errno" not in result.stderr
    assert "No space left on the disk of" in result.stderr
    assert "run the same command again" in result.stderr


def test_a_busy_hub_is_waited_for_and_retried(hub):
    state, server = hub
    f = state.repos[QWQ]["qwq-32b-q4_k_m.gguf"]
    f.fault = "busy"
    result = pull(server, "qwq-32b", "--quant", "Q4_K_M")
    assert result.returncode == 0, result.stderr
    assert len(gets(state, "qwq-32b-q4_k_m.gguf")) == 2  # the 503, then the file
    assert cached(QWQ, "qwq-32b-q4_k_m.gguf").read_bytes() == f.data


def test_a_second_pull_of_the_same_file_says_so_and_leaves_the_first_alone(hub):
    state, server = hub
    f = state.repos[QWQ]["qwq-32b-q4_k_m.gguf"]
    f.fault = "slow"
    first = pull(server, "qwq-32b", "--quant", "Q4_K_M", wait=False)
    partial_once_written(f, first, 1)
    second = pull(server, "qwq-32b", "--quant", "Q4_K_M")
    assert second.returncode == 1 and "Another download of" in second.stderr
    assert "Traceback" not in second.stderr
    assert first.wait(120) == 0, first.stderr.read()
    assert cached(QWQ, "qwq-32b-q4_k_m.gguf").read_bytes() == f.data


def test_an_unreachable_hub_is_said_once_not_once_per_quant():
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # a port nothing listens on
    port = closed.getsockname()[1]
    closed.close()
    result = subprocess.run([sys.executable, "-m", "reflectchat", "models", "qwq-32b"],
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, "HF_ENDPOINT": f"http://127.0.0.1:{port}",
                                 "HF_HUB_OFFLINE": "0"})
    assert result.returncode == 0
    said = [line for line in result.stderr.splitlines() if "from the hub" in line]
    assert len(said) == 1 and "qwq-32b: could not read its quants' headers" in said[0]
