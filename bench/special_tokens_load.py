"""Loading a GGUF whose vocabulary holds many special tokens: reflectchat's load (its log
collector, the reasoning format read from the file) against llama-cpp-python's own `Llama()` on
the same file, each in a fresh process, interleaved. llama.cpp logs a line for each special
token; reflectchat summed its kept log on every line and took 92.6 s for 300,000 of them where
llama-cpp-python took 0.65 s (issue 35).

    python bench/special_tokens_load.py [--tokens 300000] [--rounds 3]

The model is generated (tests/support/load_time.py): one layer, 64-wide, zero weights, a
vocabulary of that many control tokens.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support.load_time import load_s, write_special_tokens_gguf


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=300_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = write_special_tokens_gguf(Path(folder) / "special.gguf", args.tokens)
        alone, ours = [], []
        for _ in range(args.rounds):
            alone.append(load_s(path, "llama-cpp-python"))
            ours.append(load_s(path, "reflectchat"))
    a, o = statistics.median(alone), statistics.median(ours)
    print(f"{args.tokens:,} special tokens, median of {args.rounds}: llama-cpp-python "
          f"{a:.2f} s, reflectchat {o:.2f} s, ratio {o / a:.2f}x")


if __name__ == "__main__":
    main()
