"""The columns: saved sessions, the chat, and the answer in view. Side by side from
`NARROW_BELOW` terminal columns up; one at a time under tabs below it, where a new answer brings
its pane forward unless the user picked a tab during it."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.events import Resize
from textual.reactive import reactive, var
from textual.widgets import Tab, Tabs

from reflectchat.config import UIConfig
from reflectchat.store.session_store import SessionStore
from reflectchat.ui.widgets.answer_view import AnswerView
from reflectchat.ui.widgets.conversation_list import ConversationList
from reflectchat.ui.widgets.sessions_sidebar import SessionsSidebar

NARROW_BELOW = 120  # columns: narrower terminals show one column at a time, under tabs
COLUMNS = ("sessions", "conversation", "thinking", "reflection", "output", "raw")
ANSWER_COLUMNS = ("thinking", "reflection", "output", "raw")
TAB_LABELS = {"sessions": "Sessions", "conversation": "Chat", "thinking": "Thinking",
              "reflection": "Reflection", "output": "Output", "raw": "Raw"}


def visible_columns(config: UIConfig) -> tuple[str, ...]:
    """The columns the pane toggles in `config` leave on."""
    c = config
    answer = ("raw",) if c.raw_view else (
        *(("thinking",) if c.show_thinking and not c.output_only else ()),
        *(("reflection",) if c.show_reflection and not c.output_only else ()),
        "output",
    )
    if c.output_only:
        return answer
    return (*(("sessions",) if c.show_sessions else ()), "conversation", *answer)


class Columns(Vertical):
    narrow = reactive(False)  # one column at a time, under tabs
    active = reactive("output")  # the column in front, in tabs mode
    shown: reactive[tuple[str, ...]] = reactive(("conversation", "output"))  # switched on
    answering = var(False)  # an answer streams: its panes may come forward

    def __init__(self, store: SessionStore | None, store_problem: str | None) -> None:
        super().__init__(id="workspace")
        self._store, self._store_problem = store, store_problem
        self._tab_chosen = False  # the user picked a tab during this answer: don't switch it

    def compose(self) -> ComposeResult:
        yield Tabs(*(Tab(TAB_LABELS[c], id=f"tab-{c}") for c in COLUMNS), id="column-tabs",
                   active=f"tab-{self.active}")
        with Horizontal(id="columns"):
            yield SessionsSidebar(self._store, self._store_problem)
            yield ConversationList()
            yield AnswerView()

    def on_mount(self) -> None:
        self._arrange()

    def on_resize(self, event: Resize) -> None:
        self.narrow = event.size.width < NARROW_BELOW

    def watch_narrow(self) -> None:
        self._arrange()

    def watch_active(self) -> None:
        self._arrange()

    def watch_shown(self) -> None:
        self._arrange()

    def watch_answering(self, live: bool) -> None:
        if live:  # a new answer: the user has not picked a tab during it yet
            self._tab_chosen = False

    def bring(self, column: str) -> None:
        """In tabs mode, bring a column to the front (if the user has not picked one)."""
        if self.narrow and not self._tab_chosen and column in self.shown:
            self.active = column

    def choose(self, column: str) -> None:
        """The user asked for this column: it comes to the front and stays there."""
        if self.narrow:
            self._tab_chosen = True
            self.active = column

    def on_answer_view_wants(self, message: AnswerView.Wants) -> None:
        message.stop()
        self.bring(message.column)

    def on_tabs_tab_activated(self, event: Tabs.TabActivated) -> None:
        event.stop()
        column = (event.tab.id or "").removeprefix("tab-")
        if column != self.active and column in self.shown:
            self._tab_chosen = self.answering
            self.active = column

    def _arrange(self) -> None:
        if not self.children:
            return  # not composed yet: mounting arranges
        shown = self.shown
        if self.active not in shown:
            self.active = "raw" if "raw" in shown else "output"
            return  # the watcher arranges again
        tabs = self.query_one(Tabs)
        tabs.display = self.narrow
        self.set_class(self.narrow, "narrow")
        for column in COLUMNS:
            self.query_one(f"#{column}").display = column in shown and (
                not self.narrow or column == self.active)
        answer = self.query_one(AnswerView)
        answer.display = any(self.query_one(f"#{c}").display for c in ANSWER_COLUMNS)
        with tabs.prevent(Tabs.TabActivated):  # our own changes are not the user's choice
            for column in COLUMNS:
                tab = tabs.query_one(f"#tab-{column}", Tab)
                if tab.display != (column in shown):
                    (tabs.show if column in shown else tabs.hide)(f"tab-{column}")
            tabs.active = f"tab-{self.active}"
