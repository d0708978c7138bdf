"""Switch model or quant: the demo, every catalog quant and every GGUF other tools downloaded,
grouped by model (a header line each, the model in use first), each quant with its size, bits
per weight, fit, speed and whether it is on disk, and the ★ with its reason. Choosing one that
is not on disk downloads it first; a local file is used where it lies.

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

from reflectchat.models.advice import Row, best_pick
from reflectchat.models.draft_plan import catalog_draft
from reflectchat.models.fit import Verdict
from reflectchat.models.quality import params_text
from reflectchat.models.speed import speed_text
from reflectchat.sizes import size_text
from reflectchat.untrusted import visible

PLANNING = "Planning each quant for this machine …"
NAME_COLUMN = 12  # quant names up to this long line up in a column; longer file names wrap
NOTES_SHOWN = 3  # files that cannot be planned, named under the list


@dataclass(frozen=True)
class ModelPick:
    model: str | None  # None: the demo model
    quant: str | None
    download: bool = False  # not on disk yet


class ModelPicker(ModalScreen[ModelPick | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, plan_rows: Callable[[], tuple[list[Row], list[str]]], current: str,
                 current_model: str = "") -> None:
        """`plan_rows` runs on a worker thread: the rows, and why some files are not among
        them (an incomplete download, a damaged header), said under the list."""
        super().__init__(id="model-picker")
        self._plan_rows = plan_rows
        self._rows: list[Row] = []
        self._current = current
        self._current_model = current_model

    def compose(self) -> ComposeResult:
        demo = Option(Content.assemble(("demo model", "bold"), " (replays recorded answers)"),
                      id="demo")
        with Vertical(id="picker-body") as body:
            body.border_title = Content(f"Switch model (now: {visible(self._current)})")
            body.border_subtitle = "★ recommended for this machine · Enter loads or downloads"
            yield OptionList(demo, Option(Content.styled(PLANNING, "$text-muted"),
                                          id="planning", disabled=True))
            yield Label("", id="picker-note")

    def on_mount(self) -> None:
        self._plan()

    @work(thread=True, exclusive=True)
    def _plan(self) -> None:
        rows, notes = self._plan_rows()
        if not get_current_worker().is_cancelled:  # the picker is still open
            self.app.call_from_thread(self._show_rows, rows, notes)

    def _show_rows(self, rows: list[Row], notes: list[str]) -> None:
        if not self.is_attached:
            return
        # the current model's quants first, then the catalog, then files from other tools
        current = {r.group_key for r in rows if r.group_key == self._current_model
                   or (r.path is not None and str(r.path.resolve()) == self._current_model)}
        self._rows = sorted(rows, key=lambda r: r.group_key not in current)
        options = self.query_one(OptionList)
        options.remove_option("planning")
        best = best_pick(self._rows)
        if best is not None:
            options.add_option(Option(Content.assemble(
                ("Best for this machine: ", "bold"),
                f"{visible(best.group)} {visible(best.quant_name)}",
                (f" ({best.reason})", "$text-muted")), id="best", disabled=True))
        group, width = None, 0
        for i, row in enumerate(self._rows):
            if row.group_key != group:
                group = row.group_key
                members = [r for r in self._rows if r.group_key == group]
                options.add_option(Option(self._header(members), disabled=True))
                width = max(len(visible(r.quant_name)) for r in members)
                width = width if width <= NAME_COLUMN else 0  # long names: a line of their own
            options.add_option(self._option(i, row, width))
        if notes:  # under the list, where it is seen without scrolling to its end
            shown = [f"✗ {visible(note)}" for note in notes[:NOTES_SHOWN]]
            if len(notes) > NOTES_SHOWN:
                shown.append(f"… and {len(notes) - NOTES_SHOWN} more (`reflectchat models`)")
            self.query_one("#picker-note", Label).update(Content("\n".join(shown)))

    @staticmethod
    def _header(members: list[Row]) -> Content:
        first = members[0]
        params = params_text(first.shape.params) if first.shape.params else ""
        starred = next((r for r in members if r.recommended), None)
        why = f"\n★ {visible(starred.quant_name)}: {starred.reason}" if starred else ""
        drafting = catalog_draft(members[0].model)
        return Content.assemble((visible(first.group), "bold"), f"  {params}",
                                (why, "$text-muted"),
                                (f"\n{drafting}" if drafting else "", "$text-muted"))

    @staticmethod
    def _option(i: int, row: Row, width: int) -> Option:
        """One quant, its columns lined up with the others of its model."""
        fits = row.plan.verdict is not Verdict.NO_FIT
        state = ("on disk", "$success") if row.downloaded else ("download", "$text-muted")
        measured = row.memory_measured or row.speed.decode_measured
        return Option(Content.assemble(
            ("★ " if row.recommended else "  ", "$success"),
            (f"{visible(row.quant_name):<{width}}", "$accent"),
            f"  {size_text(row.size):>9}" if width else f"\n{size_text(row.size):>11}",
            f"  {row.bpw:4.1f} bpw" if row.bpw else "", "  ",
            (f"{row.plan.short_label:<13}", "$text" if fits else "$error"),
            f"  {speed_text(row.speed.decode_tps, row.speed.decode_measured):>6} tok/s"
            if row.speed.decode_tps else "",
            f"  prompt {speed_text(row.speed.prompt_tps, row.speed.prompt_measured)}"
            if row.speed.prompt_tps else "", "  ", state,
            (" · measured", "$text-muted") if measured else "",
            (" · quality loss", "$warning") if row.quality_loss else "",
        ), id=str(i))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id == "demo":
            self.dismiss(ModelPick(None, None))
            return
        row = self._rows[int(event.option.id or 0)]
        if row.model is None or row.quant is None:  # a file another tool downloaded
            self.dismiss(ModelPick(str(row.path), None))
            return
        self.dismiss(ModelPick(row.model.id, row.quant.name, download=not row.downloaded))

    def action_cancel(self) -> None:
        self.dismiss(None)
