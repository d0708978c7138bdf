"""Two answers to one prompt, side by side (F10): each side's panes and figures, how the two
are run (one after the other, at once, or each model loaded in turn), and once both have
ended, what differs: whether the final answers agree, and the output's words that changed.
1, 2 or = marks A better, B better or a tie (kept with the session); Esc stops the answers or
goes back to the chat, which goes on with the answer marked better.

From `NARROW_BELOW` columns up the sides stand as columns; below it, one at a time under tabs.
Tab, ← and → move between the sides (into each one's output pane); Ctrl+F into the side's next
pane."""

from __future__ import annotations

import threading
from collections.abc import Callable

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.events import Resize
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Footer, Static, Tab, Tabs

from reflectchat.chat.comparison import SIDES, Comparison, differences, mark_sentence
from reflectchat.engine.base import Sampling
from reflectchat.eval.compared import final_answer, output_diff, same_final
from reflectchat.reflection.events import Channel
from reflectchat.ui.compare_run import CompareJob, Side, run_comparison
from reflectchat.ui.messages import CompareNote, ContextTrimmed, StreamFinished
from reflectchat.ui.widgets.columns import NARROW_BELOW
from reflectchat.ui.widgets.compare_side import CompareSide
from reflectchat.untrusted import visible


def upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


DIFF_CHARS = 600  # of the output diff shown at a glance
Build = Callable[[tuple[Side, Side], threading.Event, Callable[[Message], object]], CompareJob]


class CompareScreen(Screen[Comparison]):
    BINDINGS = [
        Binding("escape", "close", "Stop / back"),
        Binding("1", "mark('a')", "A better"),
        Binding("2", "mark('b')", "B better"),
        Binding("equals_sign", "mark('tie')", "Tie"),
        Binding("tab", "side(1)", "Other side", show=False, priority=True),
        Binding("shift+tab", "side(-1)", "Other side", show=False, priority=True),
        Binding("right", "side(1)", "Other side", show=False, priority=True),
        Binding("left", "side(-1)", "Other side", show=False, priority=True),
        Binding("ctrl+f", "pane", "Next pane", show=False,
                tooltip="Into the side's next pane (thinking, reflection, output), so the "
                        "arrows, Home, End and the page keys scroll it"),
    ]
    narrow = reactive(False)
    active = reactive("a")  # the side in view (in tabs) or with the focus

    def __init__(self, comparison: Comparison, build: Build | None,
                 samplings: tuple[Sampling, Sampling], how: str,
                 on_mark: Callable[[Comparison], None]) -> None:
        """`build` makes the job once the sides' widgets can hear their answers (with the
        event Esc sets and where notes go; None: a comparison kept earlier, shown again);
        `how` is said until the job says how the two run; `on_mark` keeps a mark (off the UI
        thread)."""
        super().__init__(id="compare")
        self.comparison, self._build, self._samplings = comparison, build, samplings
        self._how = how
        self._on_mark = on_mark
        self.cancel = threading.Event()
        self.ended: set[str] = set() if build is not None else set(SIDES)
        self.notes: list[str] = []  # how the two run, and how it went, as said on the screen

    def compose(self) -> ComposeResult:
        prompt = " ".join(self.comparison.sides[0].prompt.split())
        yield Static(Text.assemble(("Compare  ", "bold"), visible(prompt[:300])),
                     id="compare-prompt")
        yield Tabs(*(Tab(f"{s.upper()}: {visible(setup.label)}", id=f"tab-{s}")
                     for s, setup in zip(SIDES, self.comparison.setups, strict=True)),
                   id="compare-tabs")
        with Horizontal(id="compare-sides"):
            for s, setup, turn in zip(SIDES, self.comparison.setups, self.comparison.sides,
                                      strict=True):
                yield CompareSide(s, setup, turn)
        yield Static(self._how, id="compare-outcome", markup=False)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        sides = tuple(Side(turn, sampling, self.side(name).post_message) for name, turn, sampling
                      in zip(SIDES, self.comparison.sides, self._samplings, strict=True))
        self._arrange()
        self.side("a").pane(Channel.OUTPUT).focus()
        if self._build is None:
            self._show_outcome()
            return
        self._run(self._build(sides, self.cancel, self.post_message))  # type: ignore[arg-type]

    def side(self, name: str) -> CompareSide:
        return self.query_one(f"#side-{name}", CompareSide)

    @work(thread=True, group="compare")
    def _run(self, job: CompareJob) -> None:
        run_comparison(job)

    # -- how it goes ------------------------------------------------------------------------

    @property
    def outcome_text(self) -> str:
        return str(self.query_one("#compare-outcome", Static).render())

    def on_compare_note(self, message: CompareNote) -> None:
        self.notes.append(message.text)
        if len(self.ended) < 2:
            self.query_one("#compare-outcome", Static).update(Text(visible(message.text)))

    def on_context_trimmed(self, message: ContextTrimmed) -> None:
        self.notify(f"The oldest {message.dropped} turn(s) no longer fit the "
                    f"{message.n_ctx:,}-token context; this answer does not see them.",
                    severity="warning")

    def on_stream_finished(self, message: StreamFinished) -> None:
        side = self.comparison.side_of(message.turn)
        if side is not None:
            self.ended.add(side)
        if message.stats.error:
            self.notify(message.stats.error, title=f"Answer {(side or '').upper()} failed",
                        severity="error", timeout=15)
        if len(self.ended) == 2:
            self._show_outcome()
            self.refresh_bindings()

    def _show_outcome(self) -> None:
        a, b = (t.answer.output for t in self.comparison.sides)
        same = same_final(a, b)
        x, y = final_answer(a), final_answer(b)
        finals = f" (A: {x} · B: {y})" if x and y and not same else f" ({x})" if same and x \
            else ""
        text = Text.assemble(
            ("Final answers: ", "bold"),
            ("the same" if same else "differ", "green" if same else "yellow"), visible(finals))
        changed = differences(*self.comparison.setups)
        if changed and not self.narrow:  # narrow: the tabs name both setups
            text.append(f" · B differs in: {visible(', '.join(changed))}", "dim")
        keys = "" if self.narrow else ": 1 A better · 2 B better · = a tie · Esc back to the chat"
        text.append(f"\n{upper_first(mark_sentence(self.comparison))}{keys}", "dim")
        text.append("\nOutput diff: ", "bold")
        parts = output_diff(a, b)
        if not a.strip() and not b.strip():
            text.append("neither answer has output", "dim")
            parts = []
        elif all(op == "=" for op, _ in parts):
            text.append("none, the outputs are the same word for word", "dim")
            parts = []
        shown, most = 0, DIFF_CHARS // 4 if self.narrow else DIFF_CHARS
        for op, words in parts:
            piece = " ".join(visible(words).split()) + (" " if words[-1:].isspace() else "")
            piece = piece[:max(most - shown, 0)]
            if text.plain[-1:] not in (" ", "") and op != "=" and not piece.startswith(" "):
                text.append(" ")  # a deletion and the insertion after it, apart
            shown += len(piece)
            style = {"=": "", "-": "red strike", "+": "green"}[op]
            text.append(piece, style)
        if shown >= most:
            text.append(" …", "dim")
        self.query_one("#compare-outcome", Static).update(text)

    # -- the user's mark, moving, leaving ----------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "mark":
            return len(self.ended) == 2
        return True

    def action_mark(self, choice: str) -> None:
        self.comparison.choice = choice
        self._on_mark(self.comparison)
        self._show_outcome()
        goes_on = "" if choice == "tie" else \
            f"; the chat goes on with answer {choice.upper()}"
        self.notify(f"{upper_first(mark_sentence(self.comparison))}{goes_on}.", timeout=6)

    def action_side(self, step: int) -> None:
        self.active = SIDES[(SIDES.index(self.active) + step) % len(SIDES)]
        self.side(self.active).pane(Channel.OUTPUT).focus()

    def action_pane(self) -> None:
        side = self.side(self.active)
        here = next((c for c in Channel if side.pane(c).has_focus), None)
        channels = list(Channel)
        side.pane(channels[(channels.index(here) + 1) % 3] if here else Channel.THINKING).focus()

    def on_descendant_focus(self) -> None:
        for name in SIDES:
            if self.side(name).has_focus_within:
                self.active = name

    def on_unmount(self) -> None:
        self.cancel.set()  # however the screen goes (the app closing), its answers stop

    def action_close(self) -> None:
        if len(self.ended) < 2:
            self.cancel.set()
            self.query_one("#compare-outcome", Static).update("Stopping both answers …")
            return
        self.dismiss(self.comparison)

    # -- columns or tabs --------------------------------------------------------------------

    def on_resize(self, event: Resize) -> None:
        self.narrow = event.size.width < NARROW_BELOW

    def watch_narrow(self) -> None:
        self._arrange()

    def watch_active(self) -> None:
        self._arrange()

    def on_tabs_tab_activated(self, event: Tabs.TabActivated) -> None:
        event.stop()
        name = (event.tab.id or "").removeprefix("tab-")
        if name in SIDES and name != self.active:
            self.active = name

    def _arrange(self) -> None:
        if not self.is_mounted:
            return
        tabs = self.query_one("#compare-tabs", Tabs)
        tabs.display = self.narrow
        self.set_class(self.narrow, "narrow")
        if len(self.ended) == 2:
            self._show_outcome()  # the diff is cut to the width
        for name in SIDES:
            self.side(name).display = not self.narrow or name == self.active
        with tabs.prevent(Tabs.TabActivated):
            tabs.active = f"tab-{self.active}"
