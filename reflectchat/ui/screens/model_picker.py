"""Switch model or quant: the demo and every catalog quant, with how it fits this machine (the
memory plan's verdict and GPU layers), its size, and whether it is on disk. Choosing one that
is not on disk downloads it first."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

from reflectchat.fit import Verdict
from reflectchat.models_table import Row


@dataclass(frozen=True)
class ModelPick:
    model: str | None  # None: the demo model
    quant: str | None
    download: bool = False  # not on disk yet


class ModelPicker(ModalScreen[ModelPick | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, rows: list[Row], current: str, current_model: str = "") -> None:
        super().__init__(id="model-picker")
        # the current model's quants first, then the rest of the catalog
        self._rows = sorted(rows, key=lambda r: r.model.id != current_model)
        self._current = current

    def compose(self) -> ComposeResult:
        options = [Option(Content.assemble(("demo model", "bold"), " (replays recorded answers)"),
                          id="demo")]
        for i, row in enumerate(self._rows):
            fits = row.plan.verdict is not Verdict.NO_FIT
            state = ("on disk", "$success") if row.downloaded else ("download", "$text-muted")
            options.append(Option(Content.assemble(
                ("★ " if row.recommended else "  ", "$success"),
                (row.model.name, "bold"), " ", (row.quant.name, "$accent"),
                f"  {row.quant.size / 1e9:.1f} GB  ",
                (row.plan.label, "$text" if fits else "$error"), "  ", state,
            ), id=str(i)))
        with Vertical(id="picker-body") as body:
            body.border_title = f"Switch model (now: {self._current})"
            body.border_subtitle = "★ recommended for this machine · Enter loads or downloads"
            yield OptionList(*options)
            yield Label("", id="picker-note")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id == "demo":
            self.dismiss(ModelPick(None, None))
            return
        row = self._rows[int(event.option.id or 0)]
        self.dismiss(ModelPick(row.model.id, row.quant.name, download=not row.downloaded))

    def action_cancel(self) -> None:
        self.dismiss(None)
