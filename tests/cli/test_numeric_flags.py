"""Every numeric option is refused in one sentence outside what reflectchat, llama.cpp and
SQLite can take: a thread count of 10^11 aborted the process in llama.cpp (std::bad_alloc), a
session id of 10^23 was an OverflowError traceback from SQLite, a port of 99999 one from
bind(), and `inf` passed as a tensor split."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from reflectchat.cli.parser import build_parser

HUGE = "9" * 23
CASES = [
    ("ask", "--ctx", HUGE), ("ask", "--ctx", "0"), ("ask", "--gpu-layers", "-2"),
    ("ask", "--gpu-layers", HUGE), ("ask", "--threads", "0"), ("ask", "--threads", "99999999999"),
    ("ask", "--n-cpu-moe", "-1"), ("ask", "--max-tokens", "0"), ("ask", "--max-tokens", HUGE),
    ("ask", "--thinking-budget", "-3"), ("ask", "--temperature", "nan"),
    ("ask", "--temperature", "inf"), ("ask", "--temperature", "9"), ("ask", "--timeout", "0"),
    ("ask", "--timeout", "nan"), ("ask", "--timeout", "1e309"), ("ask", "--ctx", "1" * 5000),
    ("sessions", "show", HUGE), ("sessions", "show", "0"), ("sessions", "delete", HUGE),
    ("sessions", "export", "-5"), ("sessions", "list", "--limit", "-1"),
    ("sessions", "search", "x", "--limit", HUGE), ("eval", "--n", "0"),
    ("eval", "--seed", HUGE), ("eval", "--parallel", "0"), ("eval", "--parallel", "100000"),
    ("web", "--port", "99999"), ("web", "--port", "0"), ("models", "--ctx", "0"),
]


@pytest.mark.parametrize("argv", CASES, ids=" ".join)
def test_a_number_out_of_range_is_one_sentence(argv, capsys):
    args = [*argv, "q"] if argv[0] == "ask" else list(argv)
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(args)
    assert exit_.value.code == 2
    said = capsys.readouterr().err.strip().splitlines()[-1]
    assert "takes a whole number from" in said or "takes a number" in said
    assert len(said) < 200  # 5,000 digits are not echoed back


@pytest.mark.parametrize("argv", [
    ["sessions", "show", HUGE], ["ask", "--demo", "--threads", "99999999999", "q"],
    ["--resume", HUGE], ["ask", "--demo", "--tensor-split", "inf", "q"],
])
def test_run_for_real_no_traceback_and_no_abort(argv):
    done = subprocess.run([sys.executable, "-m", "reflectchat", *argv], capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL,
                          env={**os.environ, "COLUMNS": "200"})
    assert done.returncode in (1, 2), done.stderr
    assert "Traceback" not in done.stderr and "bad_alloc" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("reflectchat")


def test_numbers_in_range_are_taken():
    args = build_parser().parse_args(["ask", "--ctx", "8192", "--threads", "4",
                                      "--gpu-layers", "-1", "--temperature", "0.6",
                                      "--n-cpu-moe", "0", "q"])
    assert (args.ctx, args.threads, args.gpu_layers, args.temperature, args.n_cpu_moe) == \
        (8192, 4, -1, 0.6, 0)
