"""What to compare the chat's answer with (F10): side A is the chat as it runs; side B is
another model (a GGUF on disk, a configured server, or the same model) with another reasoning
effort, thinking budget or speculation. Local models and servers are listed on a worker
thread (finding files reads folders other tools fill)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, Select
from textual.widgets.option_list import Option
from textual.worker import get_current_worker

from reflectchat.engine.base import EFFORTS, SAMPLING_LIMITS
from reflectchat.models.choice import ModelChoice
from reflectchat.untrusted import visible

SAME = "same"  # the option of the model in use
AS_RUNS = "as-runs"  # a setting left as side A has it


@dataclass(frozen=True)
class CompareAsk:
    """Side B: its model (None: the chat's own), and what changes (None: as A has it)."""

    choice: ModelChoice | None
    effort: str | None = AS_RUNS
    thinking_budget: int | str | None = AS_RUNS
    speculation: str | None = AS_RUNS


class CompareSetup(ModalScreen[CompareAsk | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, prompt: str, current: str,
                 list_models: Callable[[], list[tuple[str, ModelChoice]]],
                 same_as_a: Callable[[CompareAsk], bool]) -> None:
        """`list_models` runs on a worker thread: (what the list says, the choice) of each
        other model this machine can answer with; `same_as_a` says whether a side B would
        answer just as A does."""
        super().__init__(id="compare-setup")
        self._prompt, self._current, self._list_models = prompt, current, list_models
        self._same_as_a = same_as_a
        self._choices: list[ModelChoice] = []

    def compose(self) -> ComposeResult:
        first = " ".join(self._prompt.split())
        with Vertical(id="compare-body") as body:
            body.border_title = "Compare two answers"
            body.border_subtitle = "Tab: effort, budget, speculation · Enter asks both · " \
                "Esc cancels"
            yield Label(Content.assemble(("Prompt: ", "bold"),
                                         visible(first[:200] + "…" * (len(first) > 200))))
            yield Label(Content.assemble(("A: ", "bold"), visible(self._current),
                                         " as the chat runs it"))
            yield Label(Content.assemble(("B: ", "bold"), "another model, or the same one with "
                                         "another effort, budget or speculation"))
            yield OptionList(Option(Content.assemble(("the same model", "bold"),
                                                     f" ({visible(self._current)})"), id=SAME),
                             Option(Content.styled("Finding local models and servers …",
                                                   "$text-muted"), id="finding",
                                    disabled=True), id="compare-models")
            with Horizontal(id="compare-settings"):
                yield Select([("effort as A", AS_RUNS), ("effort: model's", "own"),
                              *((f"effort {e}", e) for e in EFFORTS)], value=AS_RUNS,
                             allow_blank=False, id="compare-effort")
                yield Input(placeholder="budget (tokens)",
                            type="integer", id="compare-budget")
                yield Select([("spec as A", AS_RUNS), ("spec off", "off"),
                              ("spec n-gram", "ngram")], value=AS_RUNS,
                             allow_blank=False, id="compare-spec")
            yield Button("Ask both", variant="primary", id="compare-go")

    def on_mount(self) -> None:
        self.query_one(OptionList).highlighted = 0
        self._find()

    @work(thread=True, exclusive=True)
    def _find(self) -> None:
        found = self._list_models()
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._show, found)

    def _show(self, found: list[tuple[str, ModelChoice]]) -> None:
        if not self.is_attached:
            return
        options = self.query_one(OptionList)
        options.remove_option("finding")
        self._choices = [choice for _, choice in found]
        for i, (text, _) in enumerate(found):
            options.add_option(Option(visible(text), id=str(i)))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.action_go()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.action_go()

    def on_input_submitted(self) -> None:
        self.action_go()

    def action_go(self) -> None:
        options = self.query_one(OptionList)
        index = options.highlighted
        picked = options.get_option_at_index(index).id if index is not None else SAME
        choice = None if picked in (SAME, None, "finding") else self._choices[int(picked)]
        effort = self.query_one("#compare-effort", Select).value
        budget_text = self.query_one("#compare-budget", Input).value.strip()
        spec = self.query_one("#compare-spec", Select).value
        most = int(SAMPLING_LIMITS["thinking_budget"][2])
        if budget_text and not (budget_text.isdecimal() and len(budget_text) <= 8
                                and int(budget_text) <= most):
            self.notify(f"A thinking budget is a number of tokens from 0 to {most:,}.",
                        severity="warning")
            return
        ask = CompareAsk(choice, None if effort == "own" else str(effort),
                         int(budget_text) if budget_text else AS_RUNS, str(spec))
        if self._same_as_a(ask):
            self.notify("Side B is the same as A: pick another model, effort, thinking budget "
                        "or speculation.", severity="warning")
            return
        self.dismiss(ask)

    def action_cancel(self) -> None:
        self.dismiss(None)
