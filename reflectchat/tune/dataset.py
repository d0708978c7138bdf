"""Which pairs go into the dataset, and the dataset file.

The rule (Selective Reflection-Tuning, Li et al., arXiv 2402.10110), from the scores of the
original pair (IFD, r-IFD), of the teacher's new instruction and answer, and of the original
prompt with the teacher's better answer:
- keep the new instruction pair when its IFD rose over the original's and its r-IFD fell, with
  IFD < 1 and r-IFD < 1;
- otherwise keep the better answer (with the original prompt) when its r-IFD fell, with both
  < 1;
- otherwise drop the pair.
A user's keep/drop choice overrides the rule (kept: the rule's pick, else the original).
"""

from __future__ import annotations

import contextlib
import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reflectchat.engine.base import TagFormat
from reflectchat.reflection.events import Channel, EventKind
from reflectchat.reflection.parser import parse_whole
from reflectchat.store.tune_pairs import StoredPair

FORMATS = ("alpaca", "sharegpt", "messages")
# how each format's records map onto LLaMA-Factory's dataset_info.json (its data/README.md)
LLAMA_FACTORY = {
    "alpaca": {"columns": {"prompt": "instruction", "query": "input", "response": "output"}},
    "sharegpt": {"formatting": "sharegpt", "columns": {"messages": "conversations"},
                 "tags": {"role_tag": "from", "content_tag": "value", "user_tag": "human",
                          "assistant_tag": "gpt"}},
    "messages": {"formatting": "sharegpt", "columns": {"messages": "messages"},
                 "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user",
                          "assistant_tag": "assistant"}},
}
# a preference dataset's, where LLaMA-Factory reads one (its "messages" records are TRL's
# conversational preference format, which LLaMA-Factory does not read as is)
LLAMA_FACTORY_RANKING = {
    "alpaca": {"ranking": True, "columns": {"prompt": "instruction", "query": "input",
                                            "chosen": "chosen", "rejected": "rejected"}},
    "sharegpt": {"ranking": True, "formatting": "sharegpt",
                 "columns": {"messages": "conversations", "chosen": "chosen",
                             "rejected": "rejected"},
                 "tags": LLAMA_FACTORY["sharegpt"]["tags"]},
}
# and onto Axolotl's chat_template dataset type (its docs: dataset formats, conversation)
AXOLOTL = {
    "sharegpt": "type: chat_template, field_messages: conversations, "
                "message_property_mappings: {role: from, content: value}",
    "messages": "type: chat_template (its defaults: field_messages: messages; "
                "reasoning_content is read as field_thinking)",
}
REASONING_TAGS = re.compile(r"</?(?:thinking|reflection|output|think)>", re.IGNORECASE)


@dataclass(frozen=True)
class Decision:
    pair: StoredPair
    kept: str | None  # "instruction", "answer", "original" or None (dropped)
    rule: str  # why, in a few words

    @property
    def record(self) -> tuple[str, str, dict[str, Any] | None]:
        """(instruction, answer, its scores) of what is kept."""
        saved = self.pair.saved
        if self.kept == "instruction":
            return saved["new_instruction"], saved["new_answer"], saved.get("instruction_scores")
        if self.kept == "answer":
            return self.pair.prompt, saved["better_answer"], saved.get("answer_scores")
        return self.pair.prompt, self.pair.output, saved.get("scores")

    def answer(self, reasoning: bool) -> str:
        """The kept answer as it goes into the dataset: the model's output, or with
        `reasoning` the original answer whole, tags and all (rewrites have no reasoning)."""
        _, answer, _ = self.record
        if self.kept != "original":
            return REASONING_TAGS.sub("", answer).strip()
        return self.pair.raw.strip() if reasoning and self.pair.raw.strip() else answer.strip()

    def reasoning(self) -> str:
        """The original answer's thinking and reflections as plain text, in the order the model
        wrote them ("" for a rewrite, which has none)."""
        if self.kept != "original" or not self.pair.raw:
            return ""
        fmt = TagFormat.AUTO
        with contextlib.suppress(ValueError):
            fmt = TagFormat.parse(self.pair.tag_format or "auto")
        parts: list[str] = []
        for event in parse_whole(self.pair.raw, fmt, self.pair.prefilled):
            if event.channel is Channel.OUTPUT:
                continue
            if event.kind is EventKind.OPEN and parts:
                parts.append("\n\n")
            elif event.kind is EventKind.TEXT:
                parts.append(event.text)
        return "".join(parts).strip()


HALVES = {"instruction": "new_instruction", "response": "better_answer"}  # -> their rewrite


def half_state(saved: dict[str, Any], half: str) -> str:
    """One reflection of a pair, as every view reads it: "done" (its rewrite is stored),
    "failed: why" (the teacher's answer had none; a rerun tries again) or "todo"."""
    if saved.get(HALVES[half]):
        return "done"
    for part in (saved.get("teacher_error") or "").split("; "):
        if part.startswith(f"{half} reflection: "):
            return "failed: " + part.removeprefix(f"{half} reflection: ")
    return "todo"


def halves_to_reflect(saved: dict[str, Any]) -> tuple[str, ...]:
    """The reflections a rerun still has to do: those not done."""
    return tuple(h for h in HALVES if half_state(saved, h) != "done")


def _both_below_one(scores: dict[str, Any] | None) -> bool:
    return bool(scores) and scores["ifd"] < 1 and scores["rifd"] < 1  # type: ignore[index]


def decide(pair: StoredPair) -> Decision:
    kept, rule = _rule(pair.saved)
    choice = pair.saved.get("choice")
    if choice == "drop":
        return Decision(pair, None, "dropped by you")
    if choice == "keep":
        return Decision(pair, kept or "original", "kept by you")
    return Decision(pair, kept, rule)


def _rule(saved: dict[str, Any]) -> tuple[str | None, str]:
    original = saved.get("scores")
    if not isinstance(original, dict):
        return None, "not scored"
    new = saved.get("instruction_scores")
    better = saved.get("answer_scores")
    if not isinstance(new, dict) and not isinstance(better, dict):
        states = [half_state(saved, h) for h in HALVES]
        if "done" in states:
            return None, "rewrites not scored yet (tune score)"
        if all(s.startswith("failed") for s in states):
            return None, "reflection failed (tune reflect tries again)"
        return None, "not reflected"
    if isinstance(new, dict) and new["ifd"] > original["ifd"] and \
            new["rifd"] < original["rifd"] and _both_below_one(new):
        return "instruction", "new instruction: IFD rose, r-IFD fell"
    if isinstance(better, dict) and better["rifd"] < original["rifd"] and \
            _both_below_one(better):
        return "answer", "better answer: r-IFD fell"
    return None, "no rewrite met the rule"


def summary(decisions: list[Decision]) -> Counter[str]:
    return Counter(d.rule for d in decisions)


def write_jsonl(decisions: list[Decision], fmt: str, path: Path, reasoning: bool | str) -> int:
    """The kept pairs as JSON lines in `fmt`; each record carries its scores and source.
    `reasoning`: False drops it, True keeps it in the answer with its tags, "field" puts it in
    the assistant message's `reasoning_content` (messages format only). Written to a
    temporary file first and renamed, so a failure leaves no half file."""
    check_format(fmt, reasoning)
    lines = []
    for d in decisions:
        if d.kept is None:
            continue
        instruction, _, scores = d.record
        answer = d.answer(reasoning is True)
        source = {"session": d.pair.session_id, "message": d.pair.message_id,
                  "kept": d.kept, "rule": d.rule, "scores": scores,
                  "original_scores": d.pair.saved.get("scores")}
        if fmt == "alpaca":
            record: dict[str, Any] = {"instruction": instruction, "input": "", "output": answer}
        elif fmt == "sharegpt":
            record = {"conversations": [{"from": "human", "value": instruction},
                                        {"from": "gpt", "value": answer}]}
        else:
            reply: dict[str, str] = {"role": "assistant", "content": answer}
            if reasoning == "field":
                reply["reasoning_content"] = d.reasoning()
            record = {"messages": [{"role": "user", "content": instruction}, reply]}
        lines.append(json.dumps({**record, "reflectchat": source}, ensure_ascii=False))
    return write_lines(path, lines)


def check_format(fmt: str, reasoning: bool | str) -> None:
    """ValueError, in a sentence, for a format or a reasoning choice that cannot be written."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if reasoning == "field" and fmt != "messages":
        raise ValueError("--reasoning field puts the reasoning in the assistant message's "
                         "reasoning_content: use it with --format messages")


def write_lines(path: Path, lines: list[str]) -> int:
    """`lines` as a text file at `path`, written to a temporary file first and renamed, so a
    failure (a full disk) leaves no half file; how many lines."""
    partial = path.with_name(path.name + ".partial")
    try:
        partial.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        partial.replace(path)
    finally:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
    return len(lines)


def write_dataset_info(path: Path, fmt: str, ranking: bool = False) -> Path:
    """Add the file to LLaMA-Factory's `dataset_info.json` beside it (made if missing; other
    entries kept), named by the file's stem; `ranking`: a preference dataset (chosen and
    rejected answers). ValueError if the file there is not a JSON object: it is left as it
    is."""
    info = path.with_name("dataset_info.json")
    entries: dict[str, Any] = {}
    if info.exists():
        try:
            entries = json.loads(info.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ValueError(f"{info} could not be read ({exc}); it was left as it is") \
                from None
        if not isinstance(entries, dict):
            raise ValueError(f"{info} is not a JSON object; it was left as it is")
    entries[path.stem] = {"file_name": path.name,
                          **(LLAMA_FACTORY_RANKING if ranking else LLAMA_FACTORY)[fmt]}
    partial = info.with_name(info.name + ".partial")
    partial.write_text(json.dumps(entries, indent=2) + "\n", encoding="utf-8")
    partial.replace(info)
    return info
