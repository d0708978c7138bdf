"""Small modals for the sessions sidebar: rename a session, confirm deleting one."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label

from reflectchat.store.records import TITLE_CHARS
from reflectchat.untrusted import visible


class RenameScreen(ModalScreen[str | None]):
    """Returns the new title (stripped, not empty), or None."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel")]

    def __init__(self, title: str) -> None:
        super().__init__(classes="dialog")
        self._title = title

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-body") as body:
            body.border_title = "Rename session"
            body.border_subtitle = "Enter saves · Esc cancels"
            yield Input(self._title, max_length=TITLE_CHARS * 2, id="new-title")
            yield Label("", classes="dialog-error")

    @on(Input.Submitted)
    def _save(self, event: Input.Submitted) -> None:
        title = " ".join(event.value.split())
        if not title:
            self.query_one(".dialog-error", Label).update("A title cannot be empty.")
            return
        self.dismiss(title)


class ConfirmScreen(ModalScreen[bool]):
    BINDINGS = [Binding("escape,n", "dismiss(False)", "Cancel"),
                Binding("y", "dismiss(True)", "Yes")]

    def __init__(self, question: str, action: str) -> None:
        super().__init__(classes="dialog")
        self._question = question
        self._action = action

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-body") as body:
            body.border_title = "Are you sure?"
            yield Label(Content(visible(self._question)))
            with Horizontal(classes="dialog-buttons"):
                yield Button(f"{self._action} (y)", variant="error", id="yes")
                yield Button("Cancel (Esc)", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    @on(Button.Pressed)
    def _answer(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")
