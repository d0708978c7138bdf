"""The sessions sidebar: saved sessions newest first, or full-text search hits across them.

Queries run on a worker thread, which also builds the rows, and only the newest query's
results are shown, so typing never waits on the store; so do renames and deletes (a session of
thousands of turns takes its store's time to delete). The list renders only the rows in view
(`EntryList`). Titles and snippets are user and model text, rendered as plain Content (never
markup) with control characters made visible.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass

from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Input, Select
from textual.worker import get_current_worker

from reflectchat.store.records import CHANNELS, MARK_END, MARK_START, SearchHit, SessionInfo
from reflectchat.store.session_store import SessionStore, StoreError
from reflectchat.store.turns import conversation_from
from reflectchat.ui.messages import SessionRead
from reflectchat.ui.screens.session_dialogs import ConfirmScreen, RenameScreen
from reflectchat.ui.widgets.entry_list import EntryList, Row
from reflectchat.untrusted import visible

SEARCH_DELAY_S = 0.15  # wait for a pause in typing before searching
LEAD_CHARS = 12  # a snippet shows this much text before its first match
CHANNEL_LABELS = {"user": "Your prompts", "thinking": "Thinking", "reflection": "Reflections",
                  "output": "Outputs"}
CORRECTED = "corrected"  # the filter: answers where the model corrected itself
FILTERS = {**CHANNEL_LABELS, CORRECTED: "Corrected itself"}

Entry = SessionInfo | SearchHit


def _when(timestamp: float) -> str:
    same_day = time.localtime(timestamp)[:3] == time.localtime()[:3]
    return time.strftime("%H:%M" if same_day else "%d %b %Y", time.localtime(timestamp))


def _one_line(text: str) -> str:
    return " ".join(visible(text).split())


def session_row(info: SessionInfo, current: bool) -> Row:
    turns = (info.messages + 1) // 2
    title = Content.styled(_one_line(info.title), "bold $accent" if current else "bold")
    detail = f"{_when(info.updated)} · {turns} turn{'s' * (turns != 1)}"
    return title, Content.styled(detail, "$text-muted")


def hit_row(hit: SearchHit) -> Row:
    """The hit's turn (its prompt) and where in it the hit is, then the snippet with its
    matches marked, starting shortly before the first match so the narrow sidebar shows it."""
    where = f"reflection {hit.reflection}" if hit.channel == "reflection" else hit.channel
    title = Content.assemble(Content.styled(where, "$warning" if hit.reflection else
                                            "$text-muted"), " · ",
                             Content.styled(_one_line(hit.label), "bold"))
    text = " ".join(hit.snippet.split())
    lead = text.find(MARK_START) - LEAD_CHARS
    if lead > 0:
        text = "…" + text[lead:].lstrip()
    snippet = Content()
    for i, part in enumerate(text.replace(MARK_END, MARK_START).split(MARK_START)):
        snippet += Content.styled(part, "bold reverse") if i % 2 else Content(part)
    return title, snippet


class SessionsSidebar(Vertical):
    BINDINGS = [
        # first in the footer while the list has the focus, so at 80 columns it still shows
        # how to close the list (the app's own F6, a priority binding, is what runs)
        Binding("f6", "app.toggle_sessions", "Sessions", tooltip="Hide the sessions list"),
        Binding("n", "new_chat", "New", tooltip="Start a new chat (a new session)"),
        Binding("r", "rename", "Rename", tooltip="Rename the selected session"),
        Binding("delete,d", "delete", "Delete", tooltip="Delete the selected session"),
        Binding("slash", "search", "Search", tooltip="Search every session"),
    ]

    class NewChat(Message):
        """Start a new chat."""

    @dataclass
    class Delete(Message):
        """The user confirmed deleting this session: the chat leaves it first if it is open,
        then calls `delete`."""

        info: SessionInfo

    def __init__(self, store: SessionStore | None, problem: str | None = None) -> None:
        super().__init__(id="sessions")
        self.border_title = "Sessions"
        self.store = store
        self.current: int | None = None  # the session open in the app
        self.entries: list[Entry] = []
        self._problem = problem
        self._timer: Timer | None = None
        self._highlight_first = False  # Enter in the search: the first hit is highlighted

    def compose(self) -> ComposeResult:
        yield Input(placeholder="Search all sessions…", id="session-search")
        yield Select([(label, value) for value, label in FILTERS.items()],
                     prompt="All channels", id="search-channel", compact=True)
        yield EntryList(id="session-list")

    def on_mount(self) -> None:
        if self.store is None:
            self.query_one(EntryList).set_rows([(Content.styled("History is off:", "$error"),
                                                 Content(self._problem or ""))])
            self.disabled = True
            return
        self.reload()

    @property
    def query_text(self) -> str:
        return self.query_one("#session-search", Input).value

    @property
    def channel(self) -> str | None:
        value = self.query_one("#search-channel", Select).value
        return value if isinstance(value, str) and value in CHANNELS else None

    @property
    def corrected(self) -> bool:
        return self.query_one("#search-channel", Select).value == CORRECTED

    def reload(self) -> None:
        """Show the sessions (or the search hits) as the store has them now."""
        if self.store is not None:
            self._fetch(self.store, self.query_text, self.channel, self.corrected)

    @on(Input.Changed, "#session-search")
    @on(Select.Changed, "#search-channel")
    def _query_changed(self) -> None:
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(SEARCH_DELAY_S, self.reload)

    def on_key(self, event: events.Key) -> None:
        """Down in the search field goes to the results, as Enter does (a user types, then
        reaches for the arrows)."""
        search = self.query_one("#session-search", Input)
        if event.key == "down" and search.has_focus:
            event.stop()
            self._search_now()

    @on(Input.Submitted, "#session-search")
    def _search_now(self) -> None:
        """Search at once and move to the results with the first one highlighted, so the next
        Enter opens it."""
        self._highlight_first = True
        self.reload()
        self.query_one(EntryList).focus()

    @work(thread=True, exclusive=True, group="sessions")
    def _fetch(self, store: SessionStore, text: str, channel: str | None,
               corrected: bool) -> None:
        """Query and build the list's rows here, off the UI thread; the UI only swaps them in."""
        entries: list[Entry]
        searching = bool(text.strip()) or corrected
        if searching:
            entries = list(store.search(text, [channel] if channel else (), corrected=corrected))
        else:
            entries = list(store.sessions())
        rows = [hit_row(e) if isinstance(e, SearchHit) else session_row(e, e.id == self.current)
                for e in entries]
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self.show_entries, entries, rows, searching)

    def show_entries(self, entries: list[Entry], rows: list[Row], searching: bool) -> None:
        self.entries = entries
        noun = "hit" if searching else "session"
        self.border_subtitle = f"{len(entries)} {noun}{'s' * (len(entries) != 1)}" \
            if entries else ""
        if not entries:
            empty = "No matches." if searching else "No sessions yet."
            hint = "Try fewer or other words." if searching else "Ask something below."
            rows = [(Content.styled(empty, "$text-muted"), Content.styled(hint, "$text-muted"))]
        listed = self.query_one(EntryList)
        listed.set_rows(rows)
        if self._highlight_first and entries:
            listed.highlighted = 0
        self._highlight_first = False

    def _selected(self) -> Entry | None:
        index = self.query_one(EntryList).highlighted
        if index is None or index >= len(self.entries):
            return None
        return self.entries[index]

    def on_entry_list_chosen(self, event: EntryList.Chosen) -> None:
        event.stop()
        if event.index >= len(self.entries):
            return  # the "no sessions" line
        entry = self.entries[event.index]
        if isinstance(entry, SearchHit):
            self._read(entry.session_id, entry)
        elif entry.id != self.current:
            self._read(entry.id, None)

    @work(thread=True, exclusive=True, group="open-session")
    def _read(self, session_id: int, hit: SearchHit | None) -> None:
        """Read a session to open and parse its answers, on a worker (a long one takes
        seconds); a newer choice cancels it. The session open already (a hit in it) is not
        built again."""
        assert self.store is not None
        try:
            info = self.store.session(session_id)
            messages = self.store.messages(session_id)
        except (StoreError, sqlite3.Error) as exc:
            self.post_message(SessionRead(session_id, hit, error=str(exc)))
            return
        conversation = None if session_id == self.current else conversation_from(info, messages)
        if not get_current_worker().is_cancelled:
            self.post_message(SessionRead(session_id, hit, info, messages, conversation))

    def _with_session(self, then: Callable[[SessionInfo], object]) -> None:
        """Call `then` with the selected session: a search hit's is read first, on a worker."""
        entry = self._selected()
        if isinstance(entry, SearchHit):
            self._read_info(entry.session_id, then)
        elif entry is not None:
            then(entry)

    @work(thread=True, group="session-info")
    def _read_info(self, session_id: int, then: Callable[[SessionInfo], object]) -> None:
        assert self.store is not None
        try:
            info = self.store.session(session_id)
        except (StoreError, sqlite3.Error) as exc:
            self.app.call_from_thread(self.notify, f"Could not read the session: {exc}",
                                      severity="error")
            return
        self.app.call_from_thread(then, info)

    def action_new_chat(self) -> None:
        self.post_message(self.NewChat())

    def action_rename(self) -> None:
        self._with_session(self._rename)

    def _rename(self, info: SessionInfo) -> None:
        def rename(title: str | None) -> None:
            if title is not None:
                self._change(info.id, title, None)

        self.app.push_screen(RenameScreen(info.title), rename)

    def action_delete(self) -> None:
        self._with_session(self._confirm_delete)

    def _confirm_delete(self, info: SessionInfo) -> None:
        def confirmed(sure: bool | None) -> None:
            if sure:
                self.post_message(self.Delete(info))

        turns = (info.messages + 1) // 2
        self.app.push_screen(ConfirmScreen(
            f"Delete the session {info.title!r} ({turns} turn{'s' * (turns != 1)})? "
            "This cannot be undone.", "Delete"), confirmed)

    def delete(self, info: SessionInfo) -> None:
        self._change(info.id, None, f"Deleted {info.title!r}.")

    @work(thread=True, group="change-session")
    def _change(self, session_id: int, title: str | None, done: str | None) -> None:
        """Rename a session (`title`) or delete it (None), on a worker; `done` is said once it
        is."""
        assert self.store is not None
        try:
            if title is not None:
                self.store.rename(session_id, title)
            else:
                self.store.delete(session_id)
        except (StoreError, sqlite3.Error) as exc:
            what = "rename" if title is not None else "delete"
            self.app.call_from_thread(self.notify, f"Could not {what}: {exc}", severity="error")
            done = None
        self.app.call_from_thread(self.reload)
        if done:
            self.app.call_from_thread(self.notify, done)

    def focus_list(self) -> None:
        self.query_one(EntryList).focus()

    def action_search(self) -> None:
        self.query_one("#session-search", Input).focus()
