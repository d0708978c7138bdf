"""The Tune screen (Ctrl+T, or "Tune" in the palette): every saved (prompt, output) pair with its
IFD and r-IFD and the selection rule's verdict, sortable; the highlighted pair's original and
the teacher's rewrites side by side; and a keep/drop toggle that overrides the rule.

Scores and rewrites come from `reflectchat tune score` and `tune reflect` (the screen reads
them; it does not run the model). Pairs load on a worker thread."""

from __future__ import annotations

import threading

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label, Static
from textual.worker import get_current_worker

from reflectchat.store.session_store import SessionStore
from reflectchat.store.tune_pairs import StoredPair, pairs, save
from reflectchat.tune.dataset import Decision, decide, half_state
from reflectchat.untrusted import visible

COLUMNS = ("pair", "session", "prompt", "IFD", "r-IFD", "rewrites", "verdict")
SORTS = {"IFD": "ifd", "r-IFD": "rifd"}
PROMPT_CHARS = 28
NEXT_CHOICE = {None: "keep", "keep": "drop", "drop": None}  # the rule, keep, drop, the rule


def _score(pair: StoredPair, name: str) -> float | None:
    scores = pair.saved.get("scores")
    return scores.get(name) if isinstance(scores, dict) else None


def _figure(value: float | None) -> str:
    return f"{value:.3f}" if value is not None else "-"


class TuneScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape", "dismiss(None)", "Close"),
        Binding("k", "toggle_choice", "Keep/drop"),
        Binding("i", "sort('IFD')", "Sort by IFD"),
        Binding("r", "sort('r-IFD')", "Sort by r-IFD"),
    ]

    def __init__(self, store: SessionStore | None) -> None:
        super().__init__(id="tune")
        self.store = store
        self.decisions: list[Decision] = []
        self._sorted_by: str | None = None
        self._saving = threading.Lock()  # one save of a choice at a time

    def compose(self) -> ComposeResult:
        with Vertical(id="tune-body") as body:
            body.border_title = "Tune: pairs for Selective Reflection-Tuning"
            body.border_subtitle = "k keep/drop · i, r or a header sorts · Esc closes"
            yield Label("Loading the pairs …", id="tune-note")
            yield DataTable(id="tune-pairs", cursor_type="row", zebra_stripes=True)
            with Horizontal(id="tune-sides"):
                for side, title in (("original", "Original"),
                                    ("instruction", "New instruction (teacher)"),
                                    ("answer", "Better answer (teacher)")):
                    with VerticalScroll(classes="tune-side") as box:
                        box.border_title = title
                        yield Static(id=f"tune-{side}")

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns(*COLUMNS)
        self._load()

    @work(thread=True, exclusive=True)
    def _load(self) -> None:
        found = pairs(self.store) if self.store is not None else []
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._show, [decide(p) for p in found])

    def _show(self, decisions: list[Decision]) -> None:
        self.decisions = decisions
        self._fill()

    def _count(self) -> None:
        """The note over the table: how many pairs, scored and kept (again after each k)."""
        note, decisions = self.query_one("#tune-note", Label), self.decisions
        if self.store is None:
            note.update("History is off, so there are no pairs to tune.")
        elif not decisions:
            note.update("No finished answers yet: chat first, then run `reflectchat tune "
                        "score` and `tune reflect`.")
        else:
            scored = sum(_score(d.pair, "ifd") is not None for d in decisions)
            kept = sum(d.kept is not None for d in decisions)
            hint = "" if scored else " (scores: `reflectchat tune score`)"
            note.update(f"{len(decisions)} pairs, {scored} scored, {kept} kept{hint}")

    def _fill(self) -> None:
        self._count()
        table = self.query_one(DataTable)
        row = table.cursor_row
        table.clear()
        for n, d in enumerate(self.decisions):
            saved = d.pair.saved
            rewrites = " ".join(mark for mark, key in (("instruction", "new_instruction"),
                                                       ("answer", "better_answer"))
                                if saved.get(key)) or "-"
            verdict = f"{d.kept or 'dropped'}: {d.rule}"
            prompt = " ".join(visible(d.pair.prompt).split())
            # Rich text, never markup; a Content cell was measured as nothing, so the column
            # kept its header's width and showed the prompt's first word
            table.add_row(str(d.pair.message_id), str(d.pair.session_id),
                          Text(prompt[:PROMPT_CHARS]),
                          _figure(_score(d.pair, "ifd")), _figure(_score(d.pair, "rifd")),
                          rewrites, verdict, key=str(n))
        if self.decisions:
            table.move_cursor(row=min(row, len(self.decisions) - 1))
            self._sides(self.decisions[table.cursor_row])

    @on(DataTable.RowHighlighted)
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is not None:
            self._sides(self.decisions[int(event.row_key.value)])

    def _sides(self, d: Decision) -> None:
        saved = d.pair.saved

        def side(prompt: str | None, answer: str | None, scores: object,
                 half: str = "") -> Content:
            if not prompt or not answer:
                state = half_state(saved, half) if half else "todo"
                if state.startswith("failed: "):
                    return Content.styled(f"(the teacher gave no rewrite: "
                                          f"{visible(state.removeprefix('failed: '))}; "
                                          "`reflectchat tune reflect` tries again)", "$warning")
                return Content.styled("(none yet: `reflectchat tune reflect`)", "$text-muted")
            figures = (f"IFD {_figure(scores.get('ifd'))} · r-IFD {_figure(scores.get('rifd'))}"
                       if isinstance(scores, dict) else "not scored yet")
            return Content.assemble((figures, "bold"), "\n\n", ("Instruction: ", "bold"),
                                    visible(prompt), "\n\n", ("Answer: ", "bold"),
                                    visible(answer))

        self.query_one("#tune-original", Static).update(
            side(d.pair.prompt, d.pair.output, saved.get("scores")))
        self.query_one("#tune-instruction", Static).update(
            side(saved.get("new_instruction"), saved.get("new_answer"),
                 saved.get("instruction_scores"), "instruction"))
        self.query_one("#tune-answer", Static).update(
            side(d.pair.prompt if saved.get("better_answer") else None,
                 saved.get("better_answer"), saved.get("answer_scores"), "response"))

    def action_toggle_choice(self) -> None:
        """The rule, then keep, then drop, then the rule again."""
        table = self.query_one(DataTable)
        if not self.decisions or self.store is None:
            return
        d = self.decisions[table.cursor_row]
        choice = NEXT_CHOICE[d.pair.saved.get("choice")]
        if choice is None:
            d.pair.saved.pop("choice", None)
        else:
            d.pair.saved["choice"] = choice
        self.decisions[table.cursor_row] = decide(d.pair)
        self._fill()
        self._save_choice(d.pair)

    @work(thread=True, group="tune-save")
    def _save_choice(self, pair: StoredPair) -> None:
        """Store the pair's choice as it is when this runs (of quick presses, the last)."""
        assert self.store is not None
        with self._saving:
            save(self.store, pair.message_id, choice=pair.saved.get("choice"))

    def action_sort(self, column: str) -> None:
        """Sort by a score, lowest first; again, highest first."""
        key = SORTS.get(column)
        if key is None:
            return
        reverse = self._sorted_by == column
        self._sorted_by = None if reverse else column
        self.decisions.sort(key=lambda d: (_score(d.pair, key) is None,
                                           -(_score(d.pair, key) or 0) if reverse
                                           else (_score(d.pair, key) or 0)))
        self._fill()

    @on(DataTable.HeaderSelected)
    def _header(self, event: DataTable.HeaderSelected) -> None:
        self.action_sort(str(event.label))
