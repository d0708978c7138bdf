"""A modal to edit the system prompt and sampling settings for the next answers."""

from __future__ import annotations

from dataclasses import dataclass, replace

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, TextArea

from reflectchat.engine.base import DEFAULT_ANSWER_TOKENS, Sampling

# field, label, type, lowest value, highest value (None: no limit), may be empty
_FIELDS: list[tuple[str, str, type, float, float | None, bool]] = [
    ("temperature", "Temperature", float, 0.0, 5.0, False),
    ("top_p", "Top p", float, 0.0, 1.0, False),
    ("top_k", "Top k (0: off)", int, 0, None, False),
    ("min_p", "Min p", float, 0.0, 1.0, False),
    ("repeat_penalty", "Repeat penalty", float, 0.0, None, False),
    ("max_tokens", f"Max answer tokens (empty: {DEFAULT_ANSWER_TOKENS:,})", int, 1, 1 << 20,
     True),
    ("seed", "Seed (empty: random)", int, 0, None, True),
]


@dataclass(frozen=True)
class ChatSettings:
    system_prompt: str
    sampling: Sampling
    with_reasoning: bool = False  # earlier answers go back to the model with their reasoning


def parse_sampling(values: dict[str, str], base: Sampling) -> Sampling:
    """Sampling from the form's text; ValueError names the field and the allowed range."""
    changes: dict[str, float | int | None] = {}
    for name, label, kind, low, high, optional in _FIELDS:
        text = values[name].strip()
        if not text and optional:
            changes[name] = None
            continue
        try:
            value = kind(text)
        except ValueError:
            what = "a whole number" if kind is int else "a number"
            raise ValueError(f"{label}: {text!r} is not {what}") from None
        if value < low or (high is not None and value > high):
            span = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise ValueError(f"{label} must be {span}")
        changes[name] = value
    return replace(base, **changes)


class SettingsScreen(ModalScreen[ChatSettings | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "save", "Save")]

    def __init__(self, current: ChatSettings) -> None:
        super().__init__(id="settings")
        self._current = current

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="settings-body") as body:
            body.border_title = "System prompt and sampling (for the next answers)"
            yield Label("System prompt")
            yield TextArea(self._current.system_prompt, id="system-prompt", soft_wrap=True)
            for name, label, *_ in _FIELDS:
                value = getattr(self._current.sampling, name)
                yield Label(label)
                yield Input("" if value is None else str(value), id=f"field-{name}")
            yield Checkbox("Send earlier answers back with their reasoning (uses more context)",
                           self._current.with_reasoning, id="with-reasoning")
            yield Label("", id="settings-error")
            with Horizontal(id="settings-buttons"):
                yield Button("Save (Ctrl+S)", variant="primary", id="save")
                yield Button("Cancel (Esc)", id="cancel")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "save":
            self.action_save()
        else:
            self.action_cancel()

    def action_save(self) -> None:
        values = {name: self.query_one(f"#field-{name}", Input).value for name, *_ in _FIELDS}
        try:
            sampling = parse_sampling(values, self._current.sampling)
        except ValueError as exc:
            self.query_one("#settings-error", Label).update(str(exc))
            return
        prompt = self.query_one("#system-prompt", TextArea).text
        with_reasoning = self.query_one("#with-reasoning", Checkbox).value
        self.dismiss(ChatSettings(prompt, sampling, with_reasoning))

    def action_cancel(self) -> None:
        self.dismiss(None)
