"""Eval data is outside input: a huge --file, a line nested past Python's recursion limit or
holding a 5,000-digit number, a damaged results or run-info file from an earlier run, a FIFO
where a file should be, a --report into a folder that is not there, and a 27-byte answer that
sympy would expand into gigabytes. Each is one sentence (or a line skipped and said once),
never a traceback, a hang, or memory that grows with the file."""

from __future__ import annotations

import json
import os
import re
import resource
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from eval.test_eval_cli import evaluate, model, table, write_set  # noqa: F401 (fixture)
from support.app_pilot import make_app, wait_for

from reflectchat.eval.checking import Kind, check
from reflectchat.eval.items import EvalError, file_items, sample
from reflectchat.eval.results import ResultsFile, results_dir


def set_of(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(("line", "said"), [
    ("[" * 100_000 + "]" * 100_000, "line 2: nested too deeply to be an item"),
    ('{"question": "q", "answer": ' + "7" * 5000 + "}", "line 2: not JSON (Exceeds the limit"),
    ('{"question": "q", "answer": {"a": 1}}', "line 2: the answer is dict, not text or a number"),
    ('{"question": ["q"], "answer": 1}', 'line 2: no "question" (or "problem") text'),
])
def test_a_bad_line_is_named_by_number_and_why(tmp_path, line, said):
    path = set_of(tmp_path / "set.jsonl", ['{"question": "fine", "answer": 1}', line])
    with pytest.raises(EvalError, match=re.escape(f"set.jsonl, {said}")):
        file_items(path)


def test_a_fifo_is_refused_not_read(tmp_path):
    os.mkfifo(tmp_path / "set.jsonl")
    with pytest.raises(EvalError, match="is not a file"):
        file_items(tmp_path / "set.jsonl")


def test_a_sample_read_from_the_file_is_the_sample_of_all_its_items(tmp_path):
    lines = [json.dumps({"question": f"q{n}", "answer": n}) for n in range(500)]
    path = set_of(tmp_path / "set.jsonl", lines)
    every = file_items(path)
    assert len(every) == 500
    for n, seed in [(1, 0), (10, 3), (499, 7), (500, 1), (900, 1)]:
        assert file_items(path, n, seed) == sample(every, n, seed)
    assert file_items(path, 3, 0) != file_items(path, 3, 1)


MEMORY = textwrap.dedent("""
    import resource, sys
    from pathlib import Path
    from reflectchat.eval.items import file_items
    items = file_items(Path(sys.argv[1]), 1, 0)
    print(len(items), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
""")


def peak_kib(path: Path) -> int:
    done = subprocess.run([sys.executable, "-c", MEMORY, str(path)], capture_output=True,
                          text=True, check=True, timeout=600)
    count, peak = done.stdout.split()
    assert count == "1"
    return int(peak)


def test_memory_for_a_sample_does_not_grow_with_the_file(tmp_path):
    line = json.dumps({"question": "q", "answer": 1}) + "\n"
    small, large = tmp_path / "small.jsonl", tmp_path / "large.jsonl"
    small.write_text(line * 1_000)
    large.write_text(line * 250_000)  # 8 MB: all of it held took ~200 MB
    assert peak_kib(large) - peak_kib(small) < 16 * 1024  # the lines alone, held: 27 MB


def test_a_damaged_results_file_is_skipped_line_by_line_and_said_once(model, tmp_path):  # noqa: F811
    data = write_set(tmp_path / "mine.jsonl")
    args = ["--file", str(data), "--model", model, "--format", "reflection", "--json"]
    assert table(evaluate(*args))["default"]["correct"] == 2
    [kept] = results_dir().glob("*.jsonl")
    lines = kept.read_text().splitlines()
    wrong_type = {**json.loads(lines[1]), "got": {"x": 1}}
    negative = {**json.loads(lines[2]), "thinking_tokens": -4}
    kept.write_text("\n".join([lines[0], "[" * 100_000 + "]" * 100_000,
                               json.dumps(wrong_type), json.dumps(negative), lines[3]]) + "\n")
    info = kept.with_suffix(".json")
    info.write_text(json.dumps({**json.loads(info.read_text()), "settings": [{"a": 1}]}))
    again = evaluate(*args)
    assert "Traceback" not in again.stderr
    assert table(again)["default"]["correct"] == 2  # the two damaged items answered again
    assert "3 damaged lines in" in again.stderr and "were skipped" in again.stderr
    info.write_text("[" * 100_000 + "]" * 100_000)
    assert "Traceback" not in evaluate(*args).stderr


def test_a_results_file_that_is_a_fifo_is_refused(model, tmp_path):  # noqa: F811
    data = write_set(tmp_path / "mine.jsonl")
    args = ["--file", str(data), "--model", model, "--format", "reflection"]
    assert evaluate(*args).returncode == 0
    [kept] = results_dir().glob("*.jsonl")
    kept.unlink()
    os.mkfifo(kept)
    done = evaluate(*args)
    assert done.returncode == 1 and "is not a regular file" in done.stderr.splitlines()[-1]


def test_a_report_into_a_missing_folder_is_said_before_any_answer(model, tmp_path):  # noqa: F811
    data = write_set(tmp_path / "mine.jsonl")
    done = evaluate("--file", str(data), "--model", model, "--format", "reflection",
                    "--report", str(tmp_path / "nowhere" / "report.md"))
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1].endswith("does not exist")
    assert not list(results_dir().glob("*.jsonl"))  # nothing was answered


def test_an_answer_sympy_would_expand_into_gigabytes_is_checked_in_bounds():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    verdict = check(Kind.MATH, "3", "So the answer is \\boxed{(x+1)^{10^8}}")
    assert verdict == type(verdict)("(x+1)^{10^8}", False)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200 * 1024


async def test_the_eval_view_opens_over_damaged_runs():
    folder = results_dir()
    folder.mkdir(parents=True)
    (folder / "a.json").write_text(json.dumps({"title": "t", "model": "m", "settings": [1],
                                               "items": 1, "kind": "number", "started": 1}))
    (folder / "a.jsonl").write_text("{}\n")
    (folder / "b.json").write_text("[" * 100_000 + "]" * 100_000)
    (folder / "b.jsonl").write_text("[" * 100_000 + "]" * 100_000 + "\n")
    os.mkfifo(folder / "c.jsonl")
    os.mkfifo(folder / "c.json")
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "EvalScreen", what="Eval")
        await pilot.pause()
        assert app.is_running
    assert ResultsFile(folder / "c.jsonl").read() == []
