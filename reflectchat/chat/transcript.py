"""A conversation as a Markdown transcript: prompts and outputs as text, each answer's thinking
and reflections in collapsible `<details>` blocks (rendered by GitHub and most viewers)."""

from __future__ import annotations

import html

from reflectchat.chat.conversation import Conversation
from reflectchat.engine.base import FinishReason


def _details(summary: str, body: str) -> str:
    # The body stays Markdown; only the summary is HTML, so it is escaped.
    return f"<details>\n<summary>{html.escape(summary)}</summary>\n\n{body.strip()}\n\n</details>\n"


def conversation_markdown(conversation: Conversation, title: str, model: str) -> str:
    parts = [f"# {title}\n", f"Model: {model}\n"]
    if conversation.system_prompt:
        parts.append(_details("System prompt", conversation.system_prompt))
    for n, turn in enumerate(conversation.turns, 1):
        answer = turn.answer
        parts.append(f"## {n}. User\n\n{turn.prompt.strip()}\n")
        parts.append("### Answer\n")
        if answer.thinking.strip():
            parts.append(_details("Thinking", answer.thinking))
        for i, reflection in enumerate(answer.reflections, 1):
            parts.append(_details(f"Reflection {i}", reflection))
        parts.append((answer.output.strip() or "*(no output)*") + "\n")
        if turn.stats is not None and turn.stats.finish_reason is not FinishReason.STOP:
            parts.append(f"*Finished: {turn.stats.finish_reason.value}*\n")
    return "\n".join(parts)
