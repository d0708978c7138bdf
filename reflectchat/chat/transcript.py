"""A conversation as a Markdown transcript: prompts and outputs as text, each answer's thinking
and reflections in collapsible `<details>` blocks (rendered by GitHub and most viewers), what
each reflection changed (the claim before it and after it, side by side), and each answer's
tokens and time per channel."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from reflectchat.chat.comparison import mark_sentence
from reflectchat.chat.conversation import Conversation, Turn
from reflectchat.engine.base import FinishReason, GenerationStats
from reflectchat.reflection.answer import Answer
from reflectchat.reflection.corrections import Correction, corrections
from reflectchat.reflection.facts import facts_text


def _details(summary: str, body: str) -> str:
    # The body stays Markdown; only the summary is HTML, so it is escaped.
    return f"<details>\n<summary>{html.escape(summary)}</summary>\n\n{body.strip()}\n\n</details>\n"


def quoted(sentence: str) -> str:
    """A sentence in quotes as literal Markdown: no markup, links or table breaks ("" for
    none)."""
    return "“" + literal(sentence) + "”" if sentence else ""


def literal(text: str) -> str:
    """Text as literal Markdown: no markup, links or table breaks."""
    return re.sub(r"([\\`*_\[\]<>|#!~])", r"\\\1", text)


def what_changed(c: Correction, literal: Callable[[str], str] = str) -> str:
    """The claim before a reflection and the one after it, side by side in a table."""
    return ("| before the reflection | after it |\n|---|---|\n"
            f"| {quoted(literal(c.before)) or '—'} | {quoted(literal(c.after)) or '—'} |\n")


def reasoning_asked(stats: GenerationStats | None) -> str:
    """"reasoning effort low · thinking budget 500": what the answer asked of the model's
    thinking ("" for the model's own)."""
    if stats is None:
        return ""
    parts = [f"reasoning effort {stats.effort}"] if stats.effort else []
    if stats.thinking_budget is not None:
        parts.append(f"thinking budget {stats.thinking_budget:,}")
    return " · ".join(parts)


def finish_note(stats: GenerationStats | None) -> str | None:
    """How an answer ended, in the words the app, `sessions show` and exports all use; None
    for one that ended as the model chose."""
    if stats is None or stats.finish_reason is FinishReason.INTERRUPTED:
        return "interrupted (the app closed mid-answer)"
    if stats.finish_reason is FinishReason.CANCELLED:
        return "stopped: the partial answer is kept"
    if stats.finish_reason is FinishReason.LOOP:
        return "stopped: the model was repeating itself"
    if stats.error:
        return f"failed: {stats.error}"
    if stats.finish_reason is FinishReason.LENGTH:
        return "cut at the token limit"
    return None


def conversation_markdown(conversation: Conversation, title: str, model: str) -> str:
    parts = [f"# {title}\n", f"Model: {model}\n"]
    if conversation.system_prompt:
        parts.append(_details("System prompt", conversation.system_prompt))
    for n, turn in enumerate(conversation.turns, 1):
        parts.append(f"## {n}. User\n\n{turn.prompt.strip()}\n")
        compared = turn.comparison
        if compared is None:
            parts.append("### Answer\n")
            parts.extend(_answer_parts(turn))
            continue
        for side, answer, setup in zip("AB", compared.sides, compared.setups, strict=True):
            parts.append(f"### Answer {side}: {quoted(setup.label)}\n")
            parts.extend(_answer_parts(answer))
        mark = mark_sentence(compared)
        parts.append(f"*{literal(mark[0].upper() + mark[1:])}.*\n")
    return "\n".join(parts)


def _answer_parts(turn: Turn) -> list[str]:
    answer, parts = turn.answer, []
    if answer.thinking.strip():
        parts.append(_details("Thinking", answer.thinking))
    found = corrections(answer.raw, turn.tag_format, turn.prefilled, answer.special) \
        if answer.reflections else []
    for i, reflection in enumerate(answer.reflections, 1):
        parts.append(_details(f"Reflection {i}", reflection))
        if i <= len(found):
            parts.append(f"What changed with reflection {i}:\n\n"
                         + what_changed(found[i - 1]))
    parts.append((answer.output.strip() or "*(no output)*") + "\n")
    facts = " · ".join(t for t in (facts_text(answer.facts), reasoning_asked(turn.stats)) if t)
    if facts:
        parts.append(f"*{facts}*\n")
    note = finish_note(turn.stats)
    if note:
        parts.append(f"*{note[0].upper()}{note[1:]}.*\n")
    return parts


def export_markdown(conversation: Conversation, streaming: dict[int, str], model: str,
                    folder: Path) -> Path:
    """Write the chat as a Markdown file in `folder` (raises OSError); an answer still
    streaming (`streaming`: its index and raw text so far) as far as it came. A long chat is
    megabytes: callers run this off the UI thread."""
    for i, raw in streaming.items():
        turn = conversation.turns[i]
        conversation.turns[i] = replace(
            turn, answer=Answer.from_raw(raw, turn.tag_format, turn.prefilled))
    path = folder / time.strftime("chat-%Y%m%d-%H%M%S.md")
    title = conversation.turns[0].prompt.strip().splitlines()[0][:60]
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(conversation_markdown(conversation, title, model), encoding="utf-8")
    return path
