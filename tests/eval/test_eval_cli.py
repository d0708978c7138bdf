"""`reflectchat eval` as a user runs it: a real process, the real llama.cpp on scripted GGUFs
that answer right, answer wrong, correct themselves in a reflection (fixed) or talk themselves
out of a right answer (broken); benchmark files served by a local stand-in for the Hub in their
real formats; a kill in the middle of a run; a server that answers out of order."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from support.fault_server import chunk
from support.hub_server import Hub, HubFile, HubServer
from support.local_server import LocalServer

from reflectchat.demo.scripted_model import Script, chat_template, write_scripted_gguf

# question keyword -> (the model's answer, the reference)
ANSWERS = {
    "apples": ("<thinking>5 - 2 = 3 apples.</thinking><output>\\boxed{3}</output>", "3"),
    "trains": ("<thinking>They are 40 miles apart.</thinking><output>\\boxed{40}</output>", "60"),
    "boxes": ("<thinking>So there are 10 boxes in all.<reflection>Wait, I counted one shelf "
              "twice.</reflection>So there are 8 boxes.</thinking><output>\\boxed{8}</output>",
              "8"),
    "coins": ("<thinking>So the total is 12 coins.<reflection>Maybe each coin counts "
              "double.</reflection>The total is 24 coins.</thinking><output>\\boxed{24}"
              "</output>", "12"),
}
QUESTIONS = {
    "apples": "Ann has 5 apples and eats 2. How many apples are left?",
    "trains": "Two trains leave a station in opposite directions at 30 miles an hour. How "
              "far apart are the trains after an hour?",
    "boxes": "Two shelves hold 4 boxes each. How many boxes are there?",
    "coins": "Tom has 7 coins and finds 5. How many coins does he have?",
}


@pytest.fixture
def model(tmp_path: Path) -> str:
    return write_model(tmp_path / "solver.gguf", {k: text for k, (text, _) in ANSWERS.items()})


def write_model(path: Path, answers: dict[str, str]) -> str:
    scripts = [Script(f"<|{k}|>", [text]) for k, text in answers.items()]
    template = chat_template([([k], f"<|{k}|>") for k in answers], "<|apples|>")
    return str(write_scripted_gguf(path, scripts, template=template))


@pytest.fixture
def perfect(tmp_path: Path) -> str:
    """A model that answers every question right, without reflecting."""
    return write_model(tmp_path / "perfect.gguf", {
        k: f"<thinking>Worked out.</thinking><output>\\boxed{{{reference}}}</output>"
        for k, (_, reference) in ANSWERS.items()})


def write_set(path: Path, copies: int = 1) -> Path:
    lines = [json.dumps({"id": f"{k}-{n}", "question": QUESTIONS[k], "answer": ANSWERS[k][1]})
             for n in range(copies) for k in ANSWERS]
    path.write_text("\n".join(lines) + "\n")
    return path


def evaluate(*args: str, env: dict[str, str] | None = None,
             ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reflectchat", "eval", *args],
                          capture_output=True, text=True, timeout=180,
                          env={**os.environ, "COLUMNS": "250", **(env or {})})


def table(result: subprocess.CompletedProcess[str]) -> dict[str, dict]:
    assert result.returncode == 0, result.stderr
    return {row["setting"]: row for row in json.loads(result.stdout)["table"]}


def test_a_users_file_is_scored_with_what_the_reflections_fixed_and_broke(model, tmp_path):
    data = write_set(tmp_path / "mine.jsonl")
    report = tmp_path / "report.md"
    rows = table(evaluate("--file", str(data), "--model", model, "--format", "reflection",
                          "--json", "--report", str(report)))
    row = rows["default"]
    assert (row["correct"], row["items"]) == (2, 4)  # apples and boxes
    assert (row["with_reflections"], row["fixed"], row["broken"], row["unchanged"]) == \
        (2, 1, 1, 0)
    assert row["accuracy"]["low"] == pytest.approx(0.15003, abs=1e-4)  # Wilson, 2 of 4
    text = report.read_text()
    assert "| default | 50.0% [15.0%, 85.0%] | 2/4 |" in text and "fixed" in text
    # the same command again answers nothing: every result was kept
    again = evaluate("--file", str(data), "--model", model, "--format", "reflection")
    assert again.returncode == 0 and "4 kept from before" in again.stderr
    assert "50.0%" in again.stdout


def test_the_benchmarks_come_from_the_hub_in_their_own_formats(model, tmp_path):
    rows = [{"question": QUESTIONS[k], "answer": f"Some working.\n#### {ANSWERS[k][1]}"}
            for k in ANSWERS]
    parquet = tmp_path / "gsm8k.parquet"
    pq.write_table(pa.Table.from_pylist(rows), parquet)
    math = "\n".join(json.dumps({"problem": QUESTIONS[k], "solution": "...",
                                 "answer": ANSWERS[k][1], "unique_id": f"test/{k}.json"})
                     for k in ANSWERS) + "\n"
    hub = Hub(repos={
        "datasets/openai/gsm8k": {"main/test-00000-of-00001.parquet":
                                  HubFile(parquet.read_bytes())},
        "datasets/HuggingFaceH4/MATH-500": {"test.jsonl": HubFile(math.encode())},
    })
    with HubServer(hub) as server:
        online = {"HF_ENDPOINT": server.url, "HF_HUB_OFFLINE": "0"}
        gsm8k = table(evaluate("--bench", "gsm8k", "--n", "3", "--model", model,
                               "--format", "reflection", "--json", env=online))
        assert gsm8k["default"]["items"] == 3
        math500 = table(evaluate("--bench", "math500", "--model", model, "--format",
                                 "reflection", "--json", env=online))
        assert (math500["default"]["correct"], math500["default"]["items"]) == (2, 4)
    # the server is gone: the cached files still serve, offline
    cached = table(evaluate("--bench", "math500", "--model", model, "--format", "reflection",
                            "--json", "--settings", "default,off"))
    assert cached["off"]["items"] == 4


def test_offline_without_the_data_is_one_sentence_that_says_how_to_use_a_file(model):
    result = evaluate("--bench", "gsm8k", "--model", model)
    assert result.returncode == 1
    assert "not in the Hugging Face cache and the Hub cannot be reached" in result.stderr
    assert "--file PATH.jsonl" in result.stderr and "Traceback" not in result.stderr


def test_a_killed_run_resumes_where_it_stopped(model, tmp_path):
    data = write_set(tmp_path / "many.jsonl", copies=50)  # 200 items
    args = ["--file", str(data), "--model", model, "--format", "reflection"]
    child = subprocess.Popen([sys.executable, "-m", "reflectchat", "eval", *args],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    results_dir = Path(os.environ["XDG_DATA_HOME"]) / "reflectchat" / "eval"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        files = list(results_dir.glob("*.jsonl")) if results_dir.exists() else []
        if files and files[0].read_text().count("\n") >= 3:
            break
        time.sleep(0.01)
    child.send_signal(signal.SIGKILL)
    child.communicate()
    [kept] = list(results_dir.glob("*.jsonl"))
    before = kept.read_text().count("\n")
    assert 3 <= before < 200
    finished = evaluate(*args, "--json")
    rows = table(finished)
    assert f"{before} kept from before" in finished.stderr
    assert rows["default"]["items"] == 200 and rows["default"]["correct"] == 100
    lines = [json.loads(line) for line in kept.read_text().splitlines() if line.strip()]
    assert len({line["item"] for line in lines}) == len(lines) == 200  # none answered twice


class SlowServer(LocalServer):
    """Answers each question after a delay that makes later questions finish first."""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                body = json.dumps({"data": [{"id": "solver", "object": "model"}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                question = request["messages"][-1]["content"].lower()
                key = next(k for k in ANSWERS if k in question)
                time.sleep({"apples": 0.6, "trains": 0.4, "boxes": 0.2, "coins": 0.0}[key])
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for data in (chunk({"content": ANSWERS[key][0]}), chunk({}, finish="stop"),
                             "[DONE]"):
                    text = data if isinstance(data, str) else json.dumps(data)
                    payload = f"data: {text}\n\n".encode()
                    self.wfile.write(f"{len(payload):x}\r\n".encode() + payload + b"\r\n")
                self.wfile.write(b"0\r\n\r\n")
                self.server.order.append(key)  # type: ignore[attr-defined]

        super().__init__(Handler)
        self.order: list[str] = []


def test_parallel_answers_over_a_server_give_the_same_table(tmp_path):
    data = write_set(tmp_path / "set.jsonl", copies=2)
    with SlowServer() as server:
        args = ["--file", str(data), "--endpoint", server.url, "--model", "solver",
                "--format", "reflection", "--json"]
        alone = table(evaluate(*args, env={"XDG_DATA_HOME": str(tmp_path / "one")}))
        one_order = list(server.order)
        server.order.clear()
        together = table(evaluate(*args, "--parallel", "4",
                                  env={"XDG_DATA_HOME": str(tmp_path / "four")}))
        assert server.order != one_order  # the answers came back in another order
    keep = ("items", "correct", "with_reflections", "fixed", "broken", "unchanged", "accuracy")
    assert {k: alone["default"][k] for k in keep} == {k: together["default"][k] for k in keep}
    assert (alone["default"]["correct"], alone["default"]["fixed"]) == (4, 2)


def test_parallel_needs_a_server(model, tmp_path):
    result = evaluate("--file", str(write_set(tmp_path / "s.jsonl")), "--model", model,
                      "--parallel", "2")
    assert result.returncode == 1 and "--parallel needs --endpoint" in result.stderr
    with SlowServer() as server:
        mixed = evaluate("--file", str(write_set(tmp_path / "s.jsonl")), "--endpoint",
                         server.url, "--vs", model, "--parallel", "2")
    assert mixed.returncode == 1 and "every --vs a server" in mixed.stderr


def test_two_models_answer_the_same_items_and_the_table_pairs_them(model, perfect, tmp_path):
    data = write_set(tmp_path / "set.jsonl")
    args = ["--file", str(data), "--model", model, "--vs", perfect, "--format", "reflection",
            "--json"]
    first = evaluate(*args)
    rows = table(first)
    assert "take turns every 10 items" in first.stderr
    assert (rows["solver.gguf"]["correct"], rows["perfect.gguf"]["correct"]) == (2, 4)
    # right only under perfect: trains and coins; both right: apples and boxes. Paired:
    # (2 - 0) / 4 = 0.5; adjusted cells 0.5 and 2.5 of 6: centre 1/3,
    # SE = sqrt(3 - 4/6) / 6 = 0.254588
    versus = rows["perfect.gguf"]["against_first"]
    assert versus["value"] == pytest.approx(0.5)
    assert versus["low"] == pytest.approx(1 / 3 - 1.959964 * 0.254588, abs=1e-5)
    assert rows["perfect.gguf"]["paired_items"] == 4
    assert rows["solver.gguf"]["fixed"] == 1 and rows["perfect.gguf"]["with_reflections"] == 0
    # each model keeps its own results: the same command answers nothing again, and the
    # first model alone reuses its share
    again = evaluate(*args[:-1], env={"COLUMNS": "80"})
    assert "8 kept from before" in again.stderr
    # too narrow for the table's eleven columns: one compact table that fits 80 columns
    lines = again.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), again.stdout
    assert sum("accuracy [95% CI]" in line for line in lines) == 1  # one table
    solver = next(line for line in lines if "solver.gguf" in line)
    perfect = next(line for line in lines if "perfect.gguf" in line)
    assert "50.0% [15.0%, 85.0%]" in solver and "2/4" in solver and "1/1" in solver
    assert "100.0%" in perfect and "4/4" in perfect and "+50.0%" in perfect
    alone = evaluate("--file", str(data), "--model", model, "--format", "reflection")
    assert alone.returncode == 0 and "4 kept from before" in alone.stderr


def test_a_model_run_here_and_a_server_are_compared_in_one_run(model, tmp_path):
    data = write_set(tmp_path / "set.jsonl")
    with SlowServer() as server:
        rows = table(evaluate("--file", str(data), "--model", model, "--vs", server.url,
                              "--settings", "default,off", "--format", "reflection", "--json"))
    host = server.url.split("//")[1].split("/")[0]
    assert set(rows) == {"solver.gguf · default", "solver.gguf · off",
                         f"solver @ {host} · default", f"solver @ {host} · off"}
    assert all(row["items"] == 4 for row in rows.values())
    assert rows[f"solver @ {host} · off"]["against_first"]["value"] == pytest.approx(0)


def test_comparisons_refuse_what_they_cannot_run(model, tmp_path):
    data = str(write_set(tmp_path / "s.jsonl"))
    same = evaluate("--file", data, "--model", model, "--vs", model)
    assert same.returncode == 1 and "already compared" in same.stderr
    missing = evaluate("--file", data, "--model", model, "--vs", str(tmp_path / "none.gguf"))
    assert missing.returncode == 1 and "none.gguf" in missing.stderr
    assert "Traceback" not in same.stderr + missing.stderr
