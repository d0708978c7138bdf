"""The conversation: each turn's prompt and the start of its output. Selecting a turn shows its
panes. Text is model or user text, so it is rendered as plain Content, never as markup."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.content import Content
from textual.widgets import ListItem, ListView, Static

from reflectchat.chat.conversation import Turn
from reflectchat.engine.base import FinishReason
from reflectchat.untrusted import visible

PREVIEW_LINES = 4


def _preview(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    shown = "\n".join(lines[:PREVIEW_LINES])
    return shown + (" …" if len(lines) > PREVIEW_LINES else "")


class TurnItem(ListItem):
    def __init__(self, turn: Turn) -> None:
        super().__init__(classes="turn")
        self.turn = turn

    def compose(self) -> ComposeResult:
        yield Static(Content(visible(self.turn.prompt.strip())), classes="user-text")
        yield Static(self._reply(), classes="reply-text")

    def _reply(self) -> Content:
        turn, stats = self.turn, self.turn.stats
        if stats is None:
            return Content.styled("thinking…", "italic $text-muted")
        body = Content(visible(_preview(turn.answer.output or turn.answer.raw)))
        if stats.finish_reason is FinishReason.INTERRUPTED:
            return body + Content.styled("\n⚠ interrupted (the app closed mid-answer)",
                                         "$warning")
        if stats.finish_reason is FinishReason.CANCELLED:
            return body + Content.styled("\n⏹ stopped", "$warning")
        if stats.error:
            return body + Content.styled(f"\n✗ {stats.error}", "$error")
        if stats.finish_reason is FinishReason.LENGTH:
            return body + Content.styled("\n… cut at the token limit", "$warning")
        return body

    def refresh_reply(self) -> None:
        self.query_one(".reply-text", Static).update(self._reply())


class ConversationList(ListView):
    def __init__(self) -> None:
        super().__init__(id="conversation")
        self.border_title = "Conversation"

    def item_for(self, turn: Turn) -> TurnItem | None:
        for item in self.query(TurnItem):
            if item.turn is turn:
                return item
        return None
