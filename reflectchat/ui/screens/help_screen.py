"""The help screen: every key the app answers to, read from the bindings themselves."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static

INTRO = (
    "The answer in view is split into Thinking, Reflection (the model's self-corrections, "
    "numbered, with a marker in Thinking where each occurred: click one to jump to the other) "
    "and Output. Select an earlier turn in the conversation to see its panes again. Ctrl+P "
    "opens the command palette."
)


def key_table(bindings: list[tuple[str, str]]) -> Content:
    width = max(len(key) for key, _ in bindings)
    lines = [Content.assemble((key.ljust(width), "bold $accent"), "  ", what)
             for key, what in bindings]
    return Content("\n").join(lines)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,f1,q", "dismiss", "Close")]

    def __init__(self, bindings: list[tuple[str, str]]) -> None:
        super().__init__(id="help")
        self._key_rows = bindings

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-body") as body:
            body.border_title = "reflectchat keys"
            body.border_subtitle = "Esc closes"
            yield Static(INTRO, classes="help-intro")
            yield Static(key_table(self._key_rows))
