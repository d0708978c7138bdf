"""`reflectchat tune export --preferences` and `sessions stats|show` on compared answers, as a
user runs them: the files load with Hugging Face `datasets` in the shapes TRL's DPOTrainer
(conversational preference) and LLaMA-Factory (ranking, with its dataset_info.json) read."""

from __future__ import annotations

import json
import subprocess
import sys

from support.compared import answer, keep_comparison

from reflectchat.chat.comparison import Setup
from reflectchat.paths import store_file
from reflectchat.store.session_store import SessionStore

Q8, Q4 = Setup("Qwen3-8B Q8_0"), Setup("Qwen3-8B Q4_K_M")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reflectchat", *args], capture_output=True,
                          text=True, timeout=180)


def seed() -> None:
    store = SessionStore.open(store_file())
    recorder = keep_comparison(store, "What is 6 * 7?",
                               (answer("Six sevens.", "42"), answer("Guess.", "40")),
                               (Q8, Q4), "a")
    keep_comparison(store, "Capital of France?",
                    (answer("Hmm.", "Lyon"), answer("Known.", "Paris")), (Q4, Q8), "a",
                    recorder)
    keep_comparison(store, "Largest planet?", (answer("Big.", "Saturn"),
                                                answer("Gas giants.", "Jupiter")), (Q4, Q8), "b",
                    recorder)
    keep_comparison(store, "Tie?", (answer("a", "yes"), answer("b", "yes")), (Q8, Q4), "tie")
    keep_comparison(store, "Unmarked?", (answer("a", "x"), answer("b", "y")), (Q8, Q4), None)
    store.close()


def test_preferences_export_in_each_trainers_format_and_load(tmp_path):
    from datasets import load_dataset  # a second to import: only where it is used

    empty = run("tune", "export", "--preferences", "-o", str(tmp_path / "none.jsonl"))
    assert empty.returncode == 1 and "No compared answers yet" in empty.stderr
    seed()
    trl = tmp_path / "dpo.jsonl"
    done = run("tune", "export", "--preferences", "--reasoning", "field", "-o", str(trl))
    assert done.returncode == 0, done.stderr
    assert "Wrote 3 preference pairs" in done.stderr and "1 tied, 1 not marked" in done.stderr
    rows = load_dataset("json", data_files=str(trl), split="train")
    assert rows.column_names == ["prompt", "chosen", "rejected"]
    assert rows[0]["prompt"] == [{"role": "user", "content": "What is 6 * 7?"}]
    assert rows[0]["chosen"] == [{"role": "assistant", "content": "42",
                                  "reasoning_content": "Six sevens."}]
    assert rows[1]["chosen"][0]["content"] == "Lyon" and \
        rows[1]["rejected"][0]["content"] == "Paris"
    factory = tmp_path / "ranked.jsonl"
    done = run("tune", "export", "--preferences", "--format", "sharegpt", "--reasoning", "keep",
               "-o", str(factory))
    assert done.returncode == 0, done.stderr
    info = json.loads((tmp_path / "dataset_info.json").read_text())["ranked"]
    assert info["ranking"] is True and info["formatting"] == "sharegpt"
    rows = load_dataset("json", data_files=str(factory), split="train")
    assert set(rows.column_names) == {"conversations", "chosen", "rejected"}
    assert rows[0]["chosen"] == {"from": "gpt",
                                 "value": "<thinking>Six sevens.</thinking><output>42</output>"}
    alpaca = tmp_path / "alpaca.jsonl"
    assert run("tune", "export", "--preferences", "--format", "alpaca", "-o",
               str(alpaca)).returncode == 0
    rows = load_dataset("json", data_files=str(alpaca), split="train")
    assert rows[0] == {"instruction": "What is 6 * 7?", "input": "", "chosen": "42",
                       "rejected": "40"}
    columns = json.loads((tmp_path / "dataset_info.json").read_text())["alpaca"]["columns"]
    assert columns == {"prompt": "instruction", "query": "input", "chosen": "chosen",
                       "rejected": "rejected"}


def test_sessions_stats_and_show_tell_the_marks():
    seed()
    stats = run("sessions", "stats")
    assert stats.returncode == 0, stats.stderr
    assert "5 comparisons, 4 marked" in stats.stdout
    assert "Qwen3-8B Q8_0 preferred 2 of 3 (67%, 95% interval [21%, 94%]) over Qwen3-8B " \
           "Q4_K_M (1); 1 tie" in " ".join(stats.stdout.split())
    data = json.loads(run("sessions", "stats", "--json").stdout)
    assert data["pairs"][0]["ties"] == 1 and data["marked"] == 4
    shown = run("sessions", "show", "1")
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout
    assert "answer A: Qwen3-8B Q8_0" in text and "answer B: Qwen3-8B Q4_K_M" in text
    assert "marked: answer A better (Qwen3-8B Q8_0)" in text
    assert text.index("42") < text.index("40")


def test_tuning_pairs_take_the_answer_each_comparison_went_on_with():
    from reflectchat.store.tune_pairs import pairs

    store = SessionStore.open(store_file())
    recorder = keep_comparison(store, "Chose B", (answer("a", "first"), answer("b", "second")),
                               (Q8, Q4), "b")
    keep_comparison(store, "Chose A", (answer("a", "third"), answer("b", "fourth")), (Q8, Q4),
                    "a", recorder)
    keep_comparison(store, "Unmarked", (answer("a", "fifth"), answer("b", "sixth")), (Q8, Q4),
                    None, recorder)
    assert [(p.prompt, p.output) for p in pairs(store)] == [
        ("Chose B", "second"), ("Chose A", "third"), ("Unmarked", "fifth")]
    store.close()
