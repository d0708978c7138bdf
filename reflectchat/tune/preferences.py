"""The comparisons the user marked, as a preference dataset: each prompt with the answer marked
better (chosen) and the other (rejected). Ties and unmarked comparisons are left out.

Formats, each loaded by its trainer as it is written:
- messages: TRL's conversational preference format (`prompt`, `chosen`, `rejected`, each a list
  of role/content messages), which its DPOTrainer reads (TRL docs, "Dataset formats");
- sharegpt and alpaca: LLaMA-Factory's preference ("ranking") formats (its data/README.md),
  named in the `dataset_info.json` written beside the file.
Reasoning: dropped (the output alone), kept (the model's whole text, tags and all), or, for
messages, in each assistant message's `reasoning_content`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from reflectchat.engine.base import TagFormat
from reflectchat.reflection.answer import Answer
from reflectchat.store.compared import ComparedAnswer, MarkedComparison
from reflectchat.tune.dataset import check_format, write_lines


def _text(answer: ComparedAnswer, reasoning: bool | str) -> str:
    if reasoning is True and answer.raw.strip():
        return answer.raw.strip()
    return answer.output.strip() or Answer.from_raw(answer.raw, TagFormat.AUTO).output.strip()


def _reply(answer: ComparedAnswer, reasoning: bool | str) -> dict[str, str]:
    reply = {"role": "assistant", "content": _text(answer, reasoning)}
    if reasoning == "field":
        reply["reasoning_content"] = answer.thinking.strip()
    return reply


def record(comparison: MarkedComparison, fmt: str, reasoning: bool | str) -> dict[str, Any]:
    """One marked comparison as a record of `fmt` (it must be ranked: not a tie)."""
    ranked = comparison.ranked()
    assert ranked is not None
    chosen, rejected = ranked
    prompt = comparison.prompt
    if fmt == "alpaca":
        return {"instruction": prompt, "input": "", "chosen": _text(chosen, reasoning),
                "rejected": _text(rejected, reasoning)}
    if fmt == "sharegpt":
        return {"conversations": [{"from": "human", "value": prompt}],
                "chosen": {"from": "gpt", "value": _text(chosen, reasoning)},
                "rejected": {"from": "gpt", "value": _text(rejected, reasoning)}}
    return {"prompt": [{"role": "user", "content": prompt}],
            "chosen": [_reply(chosen, reasoning)], "rejected": [_reply(rejected, reasoning)]}


def write_preferences(found: list[MarkedComparison], fmt: str, path: Path,
                      reasoning: bool | str) -> int:
    """The ranked comparisons as JSON lines in `fmt`; how many were written. Written to a
    temporary file first and renamed, so a failure leaves no half file."""
    check_format(fmt, reasoning)
    return write_lines(path, [json.dumps(record(c, fmt, reasoning), ensure_ascii=False)
                              for c in found if c.ranked() is not None])
