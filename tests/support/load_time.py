"""How long a GGUF takes to load, by reflectchat and by llama-cpp-python alone, each in a
fresh process (the test that bounds it and `bench/special_tokens_load.py` share this), and the
file with many special tokens they load."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from support.shaped_model import write_shaped_gguf

_LOAD = """
import sys, time
path, how = sys.argv[1], sys.argv[2]
if how == "llama-cpp-python":
    import llama_cpp
    start = time.perf_counter()
    llama_cpp.Llama(path, n_ctx=256, n_threads=1, verbose=False)
else:
    from reflectchat.engine.llama import EngineSettings, LlamaEngine
    start = time.perf_counter()
    LlamaEngine(path, EngineSettings(n_ctx=256, n_threads=1))
print(time.perf_counter() - start)
"""


def load_s(path: Path, how: str) -> float:
    """Seconds one load takes: `how` is "llama-cpp-python" or "reflectchat"."""
    done = subprocess.run([sys.executable, "-c", _LOAD, str(path), how], check=True,
                          capture_output=True, text=True, timeout=1800)
    return float(done.stdout.split()[-1])


def write_special_tokens_gguf(path: Path, tokens: int) -> Path:
    """One layer, 64 wide, zero weights, a vocabulary of `tokens` control tokens."""
    write_shaped_gguf(path, n_layer=1, n_embd=64, n_head=1, n_head_kv=1, n_ff=64,
                      n_vocab=tokens + 259, zeros=True, control_tokens=tokens)
    return path
