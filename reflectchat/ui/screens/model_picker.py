"""Switch model or quant: the demo and every catalog quant, with how it fits this machine (the
memory plan's verdict and GPU layers), its size, and whether it is on disk. Choosing one that
is not on disk downloads it first.

Planning reads the hardware and GGUF headers, which can take seconds: the picker opens at once
with the demo and a "planning" line, and a worker thread fills in the rest."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option
from textual.worker import get_current_worker

from reflectchat.models.fit import Verdict
from reflectchat.models.quant_plans import Row
from reflectchat.sizes import size_text

PLANNING = "Planning each quant for this machine …"


@dataclass(frozen=True)
class ModelPick:
    model: str | None  # None: the demo model
    quant: str | None
    download: bool = False  # not on disk yet


class ModelPicker(ModalScreen[ModelPick | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, plan_rows: Callable[[], list[Row]], current: str,
                 current_model: str = "") -> None:
        """`plan_rows` runs on a worker thread."""
        super().__init__(id="model-picker")
        self._plan_rows = plan_rows
        self._rows: list[Row] = []
        self._current = current
        self._current_model = current_model

    def compose(self) -> ComposeResult:
        demo = Option(Content.assemble(("demo model", "bold"), " (replays recorded answers)"),
                      id="demo")
        with Vertical(id="picker-body") as body:
            body.border_title = f"Switch model (now: {self._current})"
            body.border_subtitle = "★ recommended for this machine · Enter loads or downloads"
            yield OptionList(demo, Option(Content.styled(PLANNING, "$text-muted"),
                                          id="planning", disabled=True))
            yield Label("", id="picker-note")

    def on_mount(self) -> None:
        self._plan()

    @work(thread=True, exclusive=True)
    def _plan(self) -> None:
        rows = self._plan_rows()
        if not get_current_worker().is_cancelled:  # the picker is still open
            self.app.call_from_thread(self._show_rows, rows)

    def _show_rows(self, rows: list[Row]) -> None:
        if not self.is_attached:
            return
        # the current model's quants first, then the rest of the catalog
        self._rows = sorted(rows, key=lambda r: r.model.id != self._current_model)
        options = self.query_one(OptionList)
        options.remove_option("planning")
        options.add_options(self._option(i, row) for i, row in enumerate(self._rows))

    @staticmethod
    def _option(i: int, row: Row) -> Option:
        fits = row.plan.verdict is not Verdict.NO_FIT
        state = ("on disk", "$success") if row.downloaded else ("download", "$text-muted")
        return Option(Content.assemble(
            ("★ " if row.recommended else "  ", "$success"),
            (row.model.name, "bold"), " ", (row.quant.name, "$accent"),
            f"  {size_text(row.quant.size)}  ",
            (row.plan.label, "$text" if fits else "$error"), "  ", state,
        ), id=str(i))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id == "demo":
            self.dismiss(ModelPick(None, None))
            return
        row = self._rows[int(event.option.id or 0)]
        self.dismiss(ModelPick(row.model.id, row.quant.name, download=not row.downloaded))

    def action_cancel(self) -> None:
        self.dismiss(None)
