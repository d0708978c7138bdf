"""The Eval view (Ctrl+G, for grades, or "Evaluations" in the palette): the runs of
`reflectchat eval` kept in the data dir, newest first; a run's answers, one row per item and
setting, with the answer read, the reference and what the reflections did; `w` shows only the
wrong ones; the highlighted answer's thinking, reflection and output panes below, drawn as the
chat draws them.

The screen reads results; `reflectchat eval` makes them. Runs load on a worker thread."""

from __future__ import annotations

import asyncio

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label
from textual.worker import get_current_worker

from reflectchat.chat.conversation import Turn
from reflectchat.engine.base import FinishReason, GenerationStats, TagFormat
from reflectchat.eval.report import rows
from reflectchat.eval.results import Result, ResultsFile, RunInfo, runs
from reflectchat.reflection.answer import Answer
from reflectchat.reflection.events import Channel
from reflectchat.ui.widgets.answer_view import stored_panes
from reflectchat.ui.widgets.channel_pane import ChannelPane
from reflectchat.untrusted import visible

COLUMNS = ("item", "setting", "verdict", "answer read", "reference", "reflections")
CELL_CHARS = 24


def _cell(text: str | None) -> Text:
    """Model or file text as a cell: literal (a `Text` is never read as markup), on one line,
    shortened. (A `Content` cell keeps its column at the header's width.)"""
    flat = " ".join(visible(text or "—").split())
    return Text(flat if len(flat) <= CELL_CHARS else flat[:CELL_CHARS - 1] + "…")


def _verdict(r: Result) -> str:
    return "failed" if not r.scored else "right" if r.correct else "wrong"


def _reflected(r: Result) -> str:
    if not r.reflections:
        return "-"
    if r.before_correct is None:
        return f"{r.reflections}"
    change = ("fixed" if r.correct else "kept wrong") if r.before_correct is False else \
        ("kept right" if r.correct else "broken")
    return f"{r.reflections}: {change}"


def turn_of(r: Result) -> Turn:
    """The answer of a result as a finished turn, for its panes."""
    try:
        tag_format = TagFormat.parse(r.tag_format)
    except ValueError:
        tag_format = TagFormat.AUTO
    try:
        reason = FinishReason(r.finish_reason)
    except ValueError:
        reason = FinishReason.STOP
    return Turn("", tag_format, Answer.from_raw(r.raw, tag_format, r.prefilled), r.prefilled,
                GenerationStats(finish_reason=reason, error=r.error))


class EvalScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape", "dismiss(None)", "Close"),
        Binding("w", "toggle_wrong", "Wrong only"),
        Binding("left_square_bracket", "run(1)", "Older run"),
        Binding("right_square_bracket", "run(-1)", "Newer run"),
    ]

    def __init__(self) -> None:
        super().__init__(id="eval")
        self.runs: list[tuple[ResultsFile, RunInfo]] = []
        self.at = 0  # the run shown
        self.results: list[Result] = []
        self.shown: list[Result] = []
        self.wrong_only = False

    def compose(self) -> ComposeResult:
        with Vertical(id="eval-body") as body:
            body.border_title = "Evaluations"
            body.border_subtitle = "w wrong only · [ ] older/newer run · Esc closes"
            yield Label("Loading the runs …", id="eval-note")
            yield DataTable(id="eval-items", cursor_type="row", zebra_stripes=True)
            with Horizontal(id="eval-panes"):
                for channel in Channel:
                    yield ChannelPane(channel.value.capitalize(), id=f"eval-{channel.value}")

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns(*COLUMNS)
        self._load()

    @work(thread=True, exclusive=True)
    def _load(self) -> None:
        found = runs()
        results = found[self.at][0].read() if found else []
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._show, found, results)

    def _show(self, found: list[tuple[ResultsFile, RunInfo]], results: list[Result]) -> None:
        self.runs, self.results = found, results
        note = self.query_one("#eval-note", Label)
        if not found:
            note.update(Content("No evaluations yet: run `reflectchat eval` (see `reflectchat "
                                "eval --help`), then open this view again."))
        else:
            _, info = found[self.at]
            summary = " · ".join(
                f"{row.setting} {row.correct}/{row.items}"
                + (f" (fixed {row.fixed}, broken {row.broken})" if row.with_reflections
                   else "")
                for row in rows(results, info.settings))
            note.update(Content(f"Run {self.at + 1} of {len(found)}: {visible(info.title)} on "
                                f"{visible(info.model)}, {info.items} items. {summary}"))
        self._fill()

    def _fill(self) -> None:
        table = self.query_one(DataTable)
        table.clear()
        self.shown = [r for r in self.results if not self.wrong_only or not r.correct]
        for n, r in enumerate(self.shown):
            table.add_row(_cell(r.item), _cell(r.setting), _verdict(r), _cell(r.got),
                          _cell(r.reference), _reflected(r), key=str(n))
        if self.shown:
            table.move_cursor(row=0)
            self._open(self.shown[0])

    @on(DataTable.RowHighlighted)
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is not None:
            self._open(self.shown[int(event.row_key.value)])

    @work(exclusive=True, group="eval-panes")
    async def _open(self, r: Result) -> None:
        """The answer's panes, as the chat shows a stored answer: its raw text read on a
        thread (a long answer takes a while), each pane folded as the chat folds it."""
        text = await asyncio.to_thread(lambda: stored_panes(turn_of(r)))
        for channel in Channel:
            await self.query_one(f"#eval-{channel.value}", ChannelPane).show(
                text[channel], streaming=False, top=channel is Channel.REFLECTION)

    def action_toggle_wrong(self) -> None:
        self.wrong_only = not self.wrong_only
        self._fill()

    def action_run(self, step: int) -> None:
        """An older (1) or newer (-1) run."""
        if self.runs and 0 <= self.at + step < len(self.runs):
            self.at += step
            self._load()
