"""A modal to edit the system prompt and sampling settings for the next answers, and how the
model runs (context, threads, GPU layers: changing those reloads it). Every number is checked
against its range before anything is saved."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, TextArea

from reflectchat.engine.base import EFFORTS, SAMPLING_LIMITS, Runtime, Sampling
from reflectchat.engine.cpu import default_threads
from reflectchat.models.catalog import CatalogError, load_catalog
from reflectchat.sizes import parse_size, size_text
from reflectchat.untrusted import visible

# field, label, type, lowest value, highest value, may be empty
Field = tuple[str, str, type, float, float, bool]
_LABELS = {"temperature": "Temperature", "top_p": "Top p", "top_k": "Top k (0: off)",
           "min_p": "Min p", "repeat_penalty": "Repeat penalty (1: off)",
           "max_tokens": "Max answer tokens (empty: the room left in the context)",
           "seed": "Seed (empty: random)",
           "thinking_budget": "Thinking budget in tokens (empty: none; 0: no thinking)"}
_OPTIONAL = ("max_tokens", "seed", "thinking_budget")
SPECULATION_LABEL = ("Speculative decoding: off, ngram (drafts from the context), or a draft "
                     "model's GGUF path or catalog id (empty: ngram, or as started)")
BUDGET_LABEL = ("Disk for saved contexts, all sessions (so a chat reopens at once; the least "
                "recently used go first)")
EFFORT_LABEL = f"Reasoning effort ({', '.join(EFFORTS)}; empty: the model's default)"
SAMPLING_FIELDS: list[Field] = [
    (name, _LABELS[name], int if whole else float, low, high, name in _OPTIONAL)
    for name, (whole, low, high) in SAMPLING_LIMITS.items()
]
_THREADS = default_threads()
RUNTIME_FIELDS: list[Field] = [
    ("n_ctx", "Context tokens (empty: the default)", int, 256, 1 << 20, True),
    ("n_threads", f"CPU threads (empty: {_THREADS.decode} for answers, "
                  f"{_THREADS.batch} for prompts)", int, 1, 1024, True),
    ("gpu_layers", "GPU layers (-1: all; empty: as many as fit)", int, -1, 10_000, True),
    ("experts_in_ram", "Mixture of experts: layers whose experts stay in RAM (empty: as "
                       "planned)", int, 0, 10_000, True),
]


@dataclass(frozen=True)
class ChatSettings:
    system_prompt: str
    sampling: Sampling
    with_reasoning: bool  # earlier answers go back to the model with their reasoning
    runtime: Runtime
    context_budget: int  # bytes the saved contexts of all sessions may take (config.toml)


def drafting_problem(value: str | None) -> str | None:
    """Why the speculation field cannot be used: not off or ngram, and neither a file nor a
    catalog model; None if it can."""
    if value is None or value.lower() in ("off", "ngram"):
        return None
    if Path(value).expanduser().is_file():
        return None
    try:
        load_catalog().get(value)
    except CatalogError:
        return (f"Speculative decoding: {visible(value)!r} is neither off, ngram, a GGUF file "
                "nor a catalog model")
    return None


class FieldError(ValueError):
    """A value the form cannot take: `field` names it, the message says why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def parse_fields(values: dict[str, str], fields: list[Field],
                 errors: list[FieldError]) -> dict[str, float | int | None]:
    """The form's text as numbers; each field that cannot be one is added to `errors`, named
    with its allowed range (every one at once, not one per save)."""
    parsed: dict[str, float | int | None] = {}
    for name, label, kind, low, high, optional in fields:
        text = values[name].strip()
        if not text and optional:
            parsed[name] = None
            continue
        try:
            value = kind(text)
        except ValueError:
            what = "a whole number" if kind is int else "a number"
            errors.append(FieldError(name, f"{label}: {text!r} is not {what}"))
            continue
        if not low <= value <= high:
            errors.append(FieldError(name, f"{label.split(' (')[0]} must be between {low:g} "
                                           f"and {high:g}, not {text}"))
            continue
        parsed[name] = value
    return parsed


class SettingsScreen(ModalScreen[ChatSettings | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "save", "Save")]

    def __init__(self, current: ChatSettings) -> None:
        super().__init__(id="settings")
        self._current = current

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="settings-body") as body:
            body.border_title = "System prompt and sampling (for the next answers)"
            yield Label("System prompt")
            # a stored session's prompt may hold escape sequences (an import, another tool):
            # drawn with its controls visible, and kept as it was unless the user edits it
            yield TextArea(visible(self._current.system_prompt), id="system-prompt",
                           soft_wrap=True)
            for name, label, *_ in SAMPLING_FIELDS:
                yield from self._field(name, label, getattr(self._current.sampling, name))
            yield from self._field("effort", EFFORT_LABEL, self._current.sampling.effort)
            yield Checkbox("Stop an answer that repeats itself", self._current.sampling.stop_loops,
                           id="stop-loops")
            yield Checkbox("Send earlier answers back with their reasoning (uses more context)",
                           self._current.with_reasoning, id="with-reasoning")
            yield Label("How the model runs (a change reloads it)", classes="settings-heading")
            for name, label, *_ in RUNTIME_FIELDS:
                yield from self._field(name, label, getattr(self._current.runtime, name))
            yield from self._field("speculation", SPECULATION_LABEL,
                                   self._current.runtime.speculation)
            yield from self._field("context-budget", BUDGET_LABEL,
                                   size_text(self._current.context_budget).replace(" ", ""))
            yield Label("", id="settings-error")
            with Horizontal(id="settings-buttons"):
                yield Button("Save (Ctrl+S)", variant="primary", id="save")
                yield Button("Cancel (Esc)", id="cancel")

    @staticmethod
    def _field(name: str, label: str, value: object) -> ComposeResult:
        yield Label(label)
        yield Input("" if value is None else str(value), id=f"field-{name}")
        yield Label("", id=f"error-{name}", classes="field-error")

    def on_mount(self) -> None:
        self.query_one("#system-prompt", TextArea).focus()

    def _show_errors(self, errors: list[FieldError]) -> None:
        """Each message under its field, all of them above the buttons; the first field gets
        the focus and comes into view."""
        for label in self.query(".field-error").results(Label):
            label.display = False
        self.query_one("#settings-error", Label).update("\n".join(map(str, errors)))
        for error in errors:
            under = self.query_one(f"#error-{error.field}", Label)
            under.update(str(error))
            under.display = True
        entry = self.query_one(f"#field-{errors[0].field}", Input)
        entry.focus()
        self.query_one("#settings-body").scroll_to_widget(entry, animate=False)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "save":
            self.action_save()
        else:
            self.action_cancel()

    def action_save(self) -> None:
        values = {name: self.query_one(f"#field-{name}", Input).value
                  for name, *_ in SAMPLING_FIELDS + RUNTIME_FIELDS}
        effort = self.query_one("#field-effort", Input).value.strip().lower() or None
        errors: list[FieldError] = []
        sampled = parse_fields(values, SAMPLING_FIELDS, errors)
        if effort is not None and effort not in EFFORTS:
            errors.append(FieldError("effort", f"Reasoning effort is one of "
                                               f"{', '.join(EFFORTS)}, or empty; not {effort!r}"))
        run = parse_fields(values, RUNTIME_FIELDS, errors)
        speculation = self.query_one("#field-speculation", Input).value.strip() or None
        if speculation is not None and speculation.lower() in ("off", "ngram"):
            speculation = speculation.lower()
        why = drafting_problem(speculation)
        if why:
            errors.append(FieldError("speculation", why))
        budget_text = self.query_one("#field-context-budget", Input).value
        budget = parse_size(budget_text.replace(",", ""))
        if budget is None:
            errors.append(FieldError("context-budget", f"Saved contexts take a size like "
                                                       f"4GiB or 500MiB, not {budget_text!r}"))
        if errors:
            self._show_errors(errors)
            return
        sampling = replace(self._current.sampling, **sampled, effort=effort,
                           stop_loops=self.query_one("#stop-loops", Checkbox).value)
        runtime = Runtime(**run, speculation=speculation)  # type: ignore[arg-type]
        cpus = os.cpu_count() or 1
        if runtime.n_threads is not None and runtime.n_threads > cpus:
            self.app.notify(f"{runtime.n_threads} CPU threads on a machine with {cpus} CPUs: "
                            "the threads take turns and answers slow down; empty uses "
                            f"{_THREADS.decode} for answers, as llama.cpp does",
                            severity="warning")
        prompt = self.query_one("#system-prompt", TextArea).text
        if prompt == visible(self._current.system_prompt):
            prompt = self._current.system_prompt
        with_reasoning = self.query_one("#with-reasoning", Checkbox).value
        assert budget is not None
        self.dismiss(ChatSettings(prompt, sampling, with_reasoning, runtime, budget))

    def action_cancel(self) -> None:
        self.dismiss(None)
