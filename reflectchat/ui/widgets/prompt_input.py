"""The multi-line prompt: Enter sends, Ctrl+J (or Shift/Alt+Enter where the terminal reports
them) starts a new line. Pasted text keeps its newlines."""

from __future__ import annotations

from dataclasses import dataclass

from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.widgets import TextArea

NEWLINE_KEYS = ("ctrl+j", "shift+enter", "alt+enter")


class PromptInput(TextArea):
    # Not in the footer: the placeholder says them, and at 80 columns the footer's room goes
    # to the app's keys. The help screen (F1) lists them.
    BINDINGS = [
        Binding("enter", "submit", "Send", show=False, tooltip="Send the prompt"),
        Binding(",".join(NEWLINE_KEYS), "newline", "Newline", key_display="ctrl+j", show=False,
                tooltip="New line in the prompt"),
    ]

    @dataclass
    class Submitted(Message):
        text: str

    def __init__(self) -> None:
        super().__init__(id="prompt", soft_wrap=True, show_line_numbers=False,
                         placeholder="Ask something…  (Enter sends, Ctrl+J new line)")

    async def _on_key(self, event: events.Key) -> None:
        if event.key == "enter":
            event.stop()
            event.prevent_default()
            self.action_submit()
        elif event.key in NEWLINE_KEYS:
            event.stop()
            event.prevent_default()
            self.action_newline()
        else:
            await super()._on_key(event)

    def action_submit(self) -> None:
        if self.text.strip():
            self.post_message(self.Submitted(self.text))

    def action_newline(self) -> None:
        self.insert("\n")
