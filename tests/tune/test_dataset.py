"""The selection rule, the teacher's answer format, and the dataset file."""

from __future__ import annotations

import json

import pytest

from reflectchat.store.tune_pairs import StoredPair
from reflectchat.tune.dataset import decide, summary, write_dataset_info, write_jsonl
from reflectchat.tune.teacher import (
    TeacherFormatError,
    parse_instruction_reflection,
    parse_response_reflection,
)

RAW = "<thinking>\nadd them\n</thinking>\n<output>\n4\n</output>"


def pair(**saved) -> StoredPair:
    return StoredPair(7, 3, "Sums", "What is 2 + 2?", "4", RAW, "reflection", False, saved)


def s(ifd: float, rifd: float) -> dict[str, float]:
    return {"ifd": ifd, "rifd": rifd}


@pytest.mark.parametrize(("saved", "kept", "rule"), [
    ({}, None, "not scored"),
    ({"scores": s(0.8, 0.9)}, None, "rewrites not scored yet (tune score)"),
    # the new instruction raised IFD and lowered r-IFD, both below 1: it is kept
    ({"scores": s(0.5, 0.9), "instruction_scores": s(0.7, 0.6), "answer_scores": s(0.4, 0.5)},
     "instruction", "new instruction: IFD rose, r-IFD fell"),
    # its IFD fell: the better answer is tried next
    ({"scores": s(0.5, 0.9), "instruction_scores": s(0.4, 0.6), "answer_scores": s(0.4, 0.5)},
     "answer", "better answer: r-IFD fell"),
    # its IFD rose to 1 or more: not kept either
    ({"scores": s(0.5, 0.9), "instruction_scores": s(1.2, 0.6), "answer_scores": s(0.6, 0.95)},
     None, "no rewrite met the rule"),
    # the better answer's r-IFD must fall, and both must be below 1
    ({"scores": s(0.5, 0.9), "answer_scores": s(1.1, 0.5)}, None, "no rewrite met the rule"),
    ({"scores": s(0.5, 0.9), "answer_scores": s(0.9, 0.8)}, "answer",
     "better answer: r-IFD fell"),
])
def test_the_selection_rule(saved, kept, rule):
    filled = {"new_instruction": "Q*", "new_answer": "A*", "better_answer": "A'", **saved}
    decision = decide(pair(**filled))
    assert (decision.kept, decision.rule) == (kept, rule)


def test_a_pairs_reflection_state_is_one_truth():
    from reflectchat.tune.dataset import half_state, halves_to_reflect

    assert decide(pair(scores=s(0.8, 0.9))).rule == "not reflected"
    failed = {"scores": s(0.8, 0.9), "teacher_error": "instruction reflection: no [New "
              "Instruction]; response reflection: the teacher failed: timed out"}
    assert decide(pair(**failed)).rule == "reflection failed (tune reflect tries again)"
    assert half_state(failed, "response") == "failed: the teacher failed: timed out"
    half = {"scores": s(0.8, 0.9), "better_answer": "A'",
            "teacher_error": "instruction reflection: no [New Instruction]"}
    assert halves_to_reflect(half) == ("instruction",)
    assert decide(pair(**half)).rule == "rewrites not scored yet (tune score)"
    assert halves_to_reflect({**half, "new_instruction": "Q*", "new_answer": "A*"}) == ()


def test_the_users_choice_overrides_the_rule():
    dropped = {"scores": s(0.5, 0.9), "answer_scores": s(1.1, 0.5), "better_answer": "A'"}
    assert decide(pair(**dropped, choice="keep")).kept == "original"
    kept = {"scores": s(0.5, 0.9), "answer_scores": s(0.4, 0.5), "better_answer": "A'"}
    assert decide(pair(**kept, choice="keep")).kept == "answer"
    assert decide(pair(**kept, choice="drop")).kept is None


def test_teacher_rewrites_are_read_from_their_markers():
    text = ("The instruction is vague.\n[New Instruction] What is 2 + 2, in words? [End]\n"
            "[New Answer] Four. [End]")
    rewrite = parse_instruction_reflection(text)
    assert (rewrite.instruction, rewrite.answer) == ("What is 2 + 2, in words?", "Four.")
    no_end = "[New Instruction] Say hi\n[New Answer] Hi"  # [End] forgotten: the next marker ends
    assert parse_instruction_reflection(no_end).instruction == "Say hi"
    assert parse_response_reflection("ok\n[better answer]\nFour (4). [End] trailing") == \
        "Four (4)."
    with pytest.raises(TeacherFormatError, match=r"no \[Better Answer\] \.\.\. \[End\] part"):
        parse_response_reflection("The answer is fine as it is.")
    with pytest.raises(TeacherFormatError, match="New Answer"):
        parse_instruction_reflection("[New Instruction] only this [End]")


@pytest.mark.parametrize("fmt", ["alpaca", "sharegpt", "messages"])
def test_export_writes_kept_pairs_with_scores_and_source(tmp_path, fmt):
    kept = pair(scores=s(0.5, 0.9), answer_scores=s(0.4, 0.5), better_answer="Four, as 2+2=4.")
    dropped = StoredPair(9, 3, "x", "q", "a", "a", None, False, {"scores": s(0.5, 0.9)})
    out = tmp_path / "set.jsonl"
    decisions = [decide(kept), decide(dropped)]
    assert write_jsonl(decisions, fmt, out, reasoning=False) == 1
    [record] = [json.loads(line) for line in out.read_text().splitlines()]
    source = record["reflectchat"]
    assert (source["session"], source["message"], source["kept"]) == (3, 7, "answer")
    assert source["scores"] == s(0.4, 0.5) and source["original_scores"] == s(0.5, 0.9)
    text = json.dumps(record)
    assert "Four, as 2+2=4." in text and "What is 2 + 2?" in text
    assert summary(decisions) == {"better answer: r-IFD fell": 1, "not reflected": 1}
    assert not list(tmp_path.glob("*.partial"))


def test_reasoning_is_kept_or_dropped_for_original_answers(tmp_path):
    mine = pair(scores=s(0.5, 0.9), choice="keep")
    out = tmp_path / "r.jsonl"
    write_jsonl([decide(mine)], "messages", out, reasoning=True)
    kept = json.loads(out.read_text())["messages"][1]["content"]
    assert kept == RAW.strip() and "<thinking>" in kept
    write_jsonl([decide(mine)], "messages", out, reasoning=False)
    assert json.loads(out.read_text())["messages"][1]["content"] == "4"


REFLECTED = ("<thinking>\nFirst 2 + 3 = 6.\n<reflection>No: 2 + 3 is 5.</reflection>\n"
             "So 5, plus 1.\n</thinking>\n<output>\n6\n</output>")


@pytest.mark.parametrize(("fmt", "reasoning"), [("alpaca", "drop"), ("sharegpt", "keep"),
                                                ("messages", "field")])
def test_each_format_loads_as_a_hugging_face_dataset_with_no_conversion(tmp_path, fmt,
                                                                        reasoning):
    from datasets import load_dataset

    kept = StoredPair(8, 3, "Sums", "What is 2 + 3 + 1?", "6", REFLECTED, "reflection", False,
                      {"choice": "keep", "scores": s(0.5, 0.5)})
    path = tmp_path / f"mine-{fmt}.jsonl"
    mode = {"drop": False, "keep": True, "field": "field"}[reasoning]
    assert write_jsonl([decide(kept)], fmt, path, mode) == 1
    [row] = load_dataset("json", data_files=str(path), split="train")
    if fmt == "alpaca":
        assert (row["instruction"], row["output"]) == ("What is 2 + 3 + 1?", "6")
    elif fmt == "sharegpt":
        human, gpt = row["conversations"]
        assert (human["from"], gpt["from"]) == ("human", "gpt")
        assert gpt["value"].startswith("<thinking>")  # kept with its tags
    else:
        user, assistant = row["messages"]
        assert (user["role"], user["content"]) == ("user", "What is 2 + 3 + 1?")
        assert (assistant["role"], assistant["content"]) == ("assistant", "6")
        assert assistant["reasoning_content"] == \
            "First 2 + 3 = 6.\n\nNo: 2 + 3 is 5.\n\nSo 5, plus 1."
    info = json.loads(write_dataset_info(path, fmt).read_text())
    entry = info[f"mine-{fmt}"]
    assert entry["file_name"] == path.name
    if fmt != "alpaca":
        assert entry["formatting"] == "sharegpt"
        assert entry["columns"]["messages"] == ("conversations" if fmt == "sharegpt"
                                                else "messages")


def test_dataset_info_keeps_other_entries_and_leaves_a_broken_file_alone(tmp_path):
    info = tmp_path / "dataset_info.json"
    info.write_text('{"theirs": {"file_name": "theirs.json"}}')
    write_dataset_info(tmp_path / "mine.jsonl", "alpaca")
    assert set(json.loads(info.read_text())) == {"theirs", "mine"}
    info.write_text("{ not json")
    with pytest.raises(ValueError, match="left as it is"):
        write_dataset_info(tmp_path / "mine.jsonl", "alpaca")
    assert info.read_text() == "{ not json"


def test_reasoning_field_needs_the_messages_format(tmp_path):
    with pytest.raises(ValueError, match="use it with --format messages"):
        write_jsonl([], "alpaca", tmp_path / "x.jsonl", "field")


@pytest.mark.parametrize("text", [" " * (1 << 20), "[Better Answer] " + " " * (1 << 20),
                                  "[Better Answer] x " * 60_000, "[New " * 200_000])
def test_reading_a_teacher_answer_is_linear_in_its_length(text):
    """A megabyte of whitespace or markers: a quadratic reader takes minutes here, a linear one
    milliseconds. The bound is loose on purpose: a loaded CI machine must not fail it."""
    import time

    start = time.perf_counter()
    with pytest.raises(TeacherFormatError):
        parse_response_reflection(text) if "x" not in text else parse_instruction_reflection(text)
    assert time.perf_counter() - start < 5
