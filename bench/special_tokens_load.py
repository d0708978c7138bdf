"""Loading a GGUF whose vocabulary holds many special tokens: reflectchat's load (its log
collector, the reasoning format read from the file) against llama-cpp-python's own `Llama()` on
the same file, each in a fresh process, interleaved. llama.cpp logs a line for each special
token; reflectchat summed its kept log on every line and took 92.6 s for 300,000 of them where
llama-cpp-python took 0.65 s (issue 35).

    python bench/special_tokens_load.py [--tokens 300000] [--rounds 3]

The model is generated (tests/support/shaped_model.py): one layer, 64-wide, zero weights, a
vocabulary of that many control tokens.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support.shaped_model import write_shaped_gguf

LOAD = """
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
    done = subprocess.run([sys.executable, "-c", LOAD, str(path), how], check=True,
                          capture_output=True, text=True, timeout=1800)
    return float(done.stdout.split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=300_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "special.gguf"
        write_shaped_gguf(path, n_layer=1, n_embd=64, n_head=1, n_head_kv=1, n_ff=64,
                          n_vocab=args.tokens + 259, zeros=True, control_tokens=args.tokens)
        alone, ours = [], []
        for _ in range(args.rounds):
            alone.append(load_s(path, "llama-cpp-python"))
            ours.append(load_s(path, "reflectchat"))
    a, o = statistics.median(alone), statistics.median(ours)
    print(f"{args.tokens:,} special tokens, median of {args.rounds}: llama-cpp-python "
          f"{a:.2f} s, reflectchat {o:.2f} s, ratio {o / a:.2f}x")


if __name__ == "__main__":
    main()
