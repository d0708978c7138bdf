"""`reflectchat tune` as a user runs it: real processes, the real llama.cpp, a real store."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from support.sqlite_file import pragma

from reflectchat.demo.scripted_model import Script, chat_template
from reflectchat.engine.llama import EngineSettings, LlamaEngine
from reflectchat.engine.scoring import Scorer
from reflectchat.paths import store_file
from reflectchat.store.session_store import SessionStore
from reflectchat.store.tune_pairs import pairs
from reflectchat.tune.runs import pending, score_pending

SOLVE = "Solve the equation: 2x^2 + 5x - 3 = 0"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reflectchat", *args], capture_output=True,
                          text=True, timeout=180)


def asked(*prompts: str, model: str | None = None) -> None:
    for prompt in prompts:
        chosen = ["--model", model] if model else ["--demo"]
        assert run("ask", *chosen, prompt).returncode == 0


def test_an_empty_store_and_a_server_each_get_one_sentence():
    empty = run("tune", "score", "--demo")
    assert empty.returncode == 1 and "No finished answers to work on yet" in empty.stderr
    asked(SOLVE)
    remote = run("tune", "score", "--endpoint", "http://127.0.0.1:9")
    assert remote.returncode == 1
    assert remote.stderr.count("\n") == 1 and "a server's API does not give" in remote.stderr


def test_score_stores_ifd_and_rifd_and_never_redoes_a_scored_pair():
    asked(SOLVE, "Debug this Python code")
    first = run("tune", "score", "--demo", "--json")
    assert first.returncode == 0, first.stderr
    scored = json.loads(first.stdout)
    assert len(scored) == 2 and all(r["scored"] == "scores" for r in scored)
    assert all(r["ifd"] > 0 and r["rifd"] > 0 and r["tokens"] > 0 for r in scored)
    again = run("tune", "score", "--demo", "--json")
    assert json.loads(again.stdout) == [] and "2 were already scored" not in again.stdout
    said = run("tune", "score", "--demo")
    assert "Scored 0 pairs; 2 pairs were already scored with " in said.stderr
    store = SessionStore.open(store_file())
    saved = [p.saved for p in pairs(store)]
    store.close()
    assert [s["scores"]["ifd"] for s in saved] == [r["ifd"] for r in scored]


def test_a_killed_run_keeps_what_it_scored_and_the_next_one_carries_on(make_model):
    asked(SOLVE, "Debug this Python code", "What is the capital of Peru?")
    store = SessionStore.open(store_file())
    from reflectchat.demo import demo_model_path

    engine = LlamaEngine(demo_model_path(), EngineSettings(n_ctx=4096))
    scorer = Scorer(engine)
    todo = pending(pairs(store), "demo.gguf")
    assert len(todo) == 3

    def killed_after_one() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        score_pending(scorer, store, todo, "demo.gguf", killed_after_one)
    left = pending(pairs(store), "demo.gguf")
    assert [p.message_id for p, _ in left] == [p.message_id for p, _ in todo[1:]]
    results, too_long = score_pending(scorer, store, left, "demo.gguf")
    assert len(results) == 2 and too_long == 0 and pending(pairs(store), "demo.gguf") == []
    engine.close()
    store.close()


def test_pairs_longer_than_the_context_are_skipped_with_a_count():
    asked(SOLVE)
    short = run("tune", "score", "--demo", "--ctx", "256")
    assert short.returncode == 0, short.stderr
    assert "1 pair longer than the 256-token context was skipped, not cut" in short.stderr
    assert "pairs/s" in short.stderr and "tokens/s" in short.stderr  # the progress bar
    store = SessionStore.open(store_file())
    [pair] = pairs(store)
    store.close()
    assert pair.saved["skipped"] == "longer than the 256-token context"


@pytest.fixture
def teacher(tmp_path) -> str:
    """A scripted model that chats, and answers both reflection prompts in their format."""
    from reflectchat.demo.scripted_model import write_scripted_gguf

    scripts = [
        Script("<|go|>", ["Paris is the capital of France."]),
        Script("<|inst|>", ["The instruction is short.\n[New Instruction] Name the capital of "
                            "France and one fact about it. [End]\n[New Answer] Paris; it lies "
                            "on the Seine. [End]"]),
        Script("<|resp|>", ["Accurate but brief.\n[Better Answer] The capital of France is "
                            "Paris, its largest city. [End]"]),
    ]
    template = chat_template([(["quality of the instruction"], "<|inst|>"),
                              (["judge the answer"], "<|resp|>")], "<|go|>")
    return str(write_scripted_gguf(tmp_path / "teacher.gguf", scripts, template=template))


def test_reflect_select_and_export_with_a_local_teacher(teacher, tmp_path):
    asked("What is the capital of France?", model=teacher)
    assert run("tune", "score", "--model", teacher).returncode == 0
    reflected = run("tune", "reflect", "--model", teacher, "--json")
    assert reflected.returncode == 0, reflected.stderr
    [outcome] = json.loads(reflected.stdout)
    assert outcome["new_instruction"] == "Name the capital of France and one fact about it."
    assert outcome["better_answer"] == "The capital of France is Paris, its largest city."
    assert outcome["error"] is None
    store = SessionStore.open(store_file())
    [pair] = pairs(store)
    store.close()
    assert {"scores", "instruction_scores", "answer_scores"} <= set(pair.saved)
    assert "[Better Answer]" in pair.saved["teacher_raw"]["response"]
    selected = json.loads(run("tune", "select", "--json").stdout)
    assert len(selected) == 1 and selected[0]["rule"] != "not reflected"
    out = tmp_path / "set.jsonl"
    exported = run("tune", "export", "--format", "alpaca", "-o", str(out))
    assert exported.returncode == 0, exported.stderr
    assert f"to {out}" in exported.stderr and "Kept " in exported.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == (selected[0]["kept"] is not None)
    terminal = run("tune", "reflect", "--model", teacher, "--redo")
    assert "[New Instruction]" in terminal.stdout  # streamed as the teacher wrote it


def test_a_teacher_that_ignores_the_format_is_one_sentence_and_its_answer_kept(make_model):
    plain = str(make_model(Script("<|go|>", ["Looks fine to me."])))
    asked("Say hello", model=plain)
    run("tune", "score", "--model", plain)
    result = run("tune", "reflect", "--model", plain)
    assert result.returncode == 0
    assert "no [New Instruction] ... [End] part" in result.stderr
    assert "the teacher's answer is kept" in result.stderr
    store = SessionStore.open(store_file())
    [pair] = pairs(store)
    store.close()
    assert pair.saved["teacher_raw"]["response"] == "Looks fine to me."
    assert "new_instruction" not in pair.saved


def test_reflect_takes_the_answer_options_it_lists(make_model):
    """--max-tokens, --temperature and --system act on the teacher, as --help says."""
    from reflectchat.demo.scripted_model import Piece

    rambling = Script("<|go|>", [Piece(f"word{i} ") for i in range(50)])
    model = str(make_model(rambling))
    asked("Say hello", model=model)
    run("tune", "score", "--model", model)
    capped = run("tune", "reflect", "--model", model, "--max-tokens", "12", "--json")
    assert capped.returncode == 0, capped.stderr
    store = SessionStore.open(store_file())
    [pair] = pairs(store)
    store.close()
    raw = pair.saved["teacher_raw"]
    assert all(len(text.split()) == 12 for text in raw.values())  # 12 tokens, one word each


def test_a_teacher_that_echoes_the_format_placeholder_has_no_rewrite(make_model):
    echo = Script("<|go|>", ["Fine.\n[New Instruction] your new instruction [End]\n"
                             "[New Answer] your answer to the new instruction [End]\n"
                             "[Better Answer] your better answer [End]"])
    model = str(make_model(echo))
    asked("Say hello", model=model)
    run("tune", "score", "--model", model)
    result = run("tune", "reflect", "--model", model)
    assert result.returncode == 0
    assert "reflectchat: pair 1 of 1 (session 1): instruction reflection: the teacher's " \
        "[New Instruction] only repeats the prompt ('your new instruction')" in result.stderr
    assert "only repeats the prompt ('your better answer')" in result.stderr
    store = SessionStore.open(store_file())
    [pair] = pairs(store)
    store.close()
    assert "better_answer" not in pair.saved and "new_instruction" not in pair.saved


def test_answers_cut_at_the_limit_are_said_to_be_left_out_and_can_be_taken(make_model):
    from reflectchat.demo.scripted_model import Piece

    model = str(make_model(Script("<|go|>", [Piece(f"w{i} ") for i in range(40)])))
    assert run("ask", "--model", model, "--max-tokens", "5", "cut short").returncode == 0
    alone = run("tune", "score", "--model", model)
    assert alone.returncode == 1
    assert "Left out: 1 answer cut at the token limit (--include-cut takes them)." in \
        alone.stderr
    taken = run("tune", "score", "--model", model, "--include-cut", "--json")
    assert taken.returncode == 0, taken.stderr
    assert len(json.loads(taken.stdout)) == 1 and "Left out" not in taken.stderr
    assert run("ask", "--model", model, "whole").returncode == 0
    both = run("tune", "select", "--json")
    assert len(json.loads(both.stdout)) == 1  # the whole one; the cut one is said left out
    assert "Left out: 1 answer cut at the token limit" in both.stderr


def test_a_rerun_retries_only_the_reflection_that_failed(tmp_path):
    from reflectchat.demo.scripted_model import write_scripted_gguf

    def teacher(name: str, instruction: str, answer: str) -> str:
        scripts = [Script("<|go|>", [f"Paris, says {name}."]),
                   Script("<|inst|>", [instruction]), Script("<|resp|>", [answer])]
        template = chat_template([(["quality of the instruction"], "<|inst|>"),
                                  (["judge the answer"], "<|resp|>")], "<|go|>")
        return str(write_scripted_gguf(tmp_path / f"{name}.gguf", scripts, template=template))

    first = teacher("first", "It is fine.", "[Better Answer] Paris is the capital. [End]")
    second = teacher("second", "Short.\n[New Instruction] Name France's capital and river. "
                     "[End]\n[New Answer] Paris, on the Seine. [End]",
                     "[Better Answer] Another better answer. [End]")
    asked("What is the capital of France?", model=first)
    run("tune", "score", "--model", first)
    half = run("tune", "reflect", "--model", first)
    assert "instruction reflection: the teacher's answer has no [New Instruction]" in half.stderr
    store = SessionStore.open(store_file())
    [pair] = pairs(store)
    store.close()
    from reflectchat.tune.dataset import half_state

    assert half_state(pair.saved, "response") == "done"
    assert half_state(pair.saved, "instruction").startswith("failed: the teacher's answer")
    again = run("tune", "reflect", "--model", second, "--json")
    [outcome] = json.loads(again.stdout)
    assert outcome["new_instruction"] == "Name France's capital and river." and \
        "better_answer" not in outcome  # only the failed half ran again
    store = SessionStore.open(store_file())
    [pair] = pairs(store)
    store.close()
    assert pair.saved["better_answer"] == "Paris is the capital."  # the first teacher's, kept
    assert pair.saved.get("teacher_error") is None
    assert run("tune", "reflect", "--model", second, "--json").stdout.strip() == "[]"


def test_damaged_tuning_cells_are_read_as_missing_never_a_crash(tmp_path):
    asked(SOLVE)
    store = SessionStore.open(store_file())
    [pair] = pairs(store)
    store.close()
    pragma(store_file(),  # damaged by another program: the store's file, not its object
           "INSERT OR REPLACE INTO tune_pairs (message_id, scored_by, scores, new_instruction, "
           "new_answer, instruction_scores, better_answer, answer_scores, teacher_raw, choice, "
           "updated) VALUES (" + str(pair.message_id) + ", 7, '{\"ifd\": \"high\", \"rifd\": "
           "-1}', 'Q', 'A', '{\"ifd\": 1e999}', 'B', '[[[[', '{\"a\": 5}', NULL, 0)")
    selected = run("tune", "select", "--json")
    assert selected.returncode == 0, selected.stderr
    assert json.loads(selected.stdout)[0]["rule"] == "not scored"
    exported = run("tune", "export", "-o", str(tmp_path / "x.jsonl"))
    assert exported.returncode == 0 and "Traceback" not in exported.stderr


def test_an_export_of_no_records_names_no_dataset(tmp_path):
    asked(SOLVE)  # one answer, not scored: nothing is kept
    out = tmp_path / "none.jsonl"
    exported = run("tune", "export", "--format", "alpaca", "-o", str(out))
    assert exported.returncode == 0, exported.stderr
    assert "Wrote 0 records" in exported.stderr and "LLaMA-Factory" not in exported.stderr
    assert not (tmp_path / "dataset_info.json").exists()


def test_an_imported_copy_of_a_session_is_not_a_second_pair(tmp_path):
    asked(SOLVE)
    exported = run("sessions", "export", "1", "--format", "json")
    (tmp_path / "copy.json").write_text(exported.stdout)
    assert run("sessions", "import", str(tmp_path / "copy.json")).returncode == 0
    listed = run("tune", "select", "--json")
    assert listed.returncode == 0, listed.stderr
    assert len(json.loads(listed.stdout)) == 1  # one pair, not two
