"""Switch model or quant: the demo and every catalog quant, with size and download status."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

from reflectchat.model_choice import QuantOnDisk, download_hint


@dataclass(frozen=True)
class ModelPick:
    model: str | None  # None: the demo model
    quant: str | None


class ModelPicker(ModalScreen[ModelPick | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, quants: list[QuantOnDisk], current: str) -> None:
        super().__init__(id="model-picker")
        self._quants = quants
        self._current = current

    def compose(self) -> ComposeResult:
        options = [Option(Content.assemble(("demo model", "bold"), " (replays recorded answers)"),
                          id="demo")]
        for i, row in enumerate(self._quants):
            state = ("on disk", "$success") if row.path else ("not downloaded", "$text-muted")
            options.append(Option(Content.assemble(
                (row.model.name, "bold"), " ", (row.quant.name, "$accent"),
                f"  {row.quant.size / 1e9:.1f} GB  ", state,
            ), id=str(i)))
        with Vertical(id="picker-body") as body:
            body.border_title = f"Switch model (now: {self._current})"
            yield OptionList(*options)
            yield Label("", id="picker-note")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id == "demo":
            self.dismiss(ModelPick(None, None))
            return
        row = self._quants[int(event.option.id or 0)]
        if row.path is None:
            self.query_one("#picker-note", Label).update(download_hint(row.model, row.quant))
            return
        self.dismiss(ModelPick(row.model.id, row.quant.name))

    def action_cancel(self) -> None:
        self.dismiss(None)
