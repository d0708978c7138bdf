"""The app's side of session history: recording the conversation in view, opening a session
from the sidebar (or a search hit in it), renaming and deleting, and starting a new chat."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import replace

from textual.app import App

from reflectchat.chat.conversation import Conversation, Turn
from reflectchat.engine.base import Backend
from reflectchat.models.choice import ModelChoice
from reflectchat.reflection.events import Channel
from reflectchat.store.recorder import SessionRecorder
from reflectchat.store.records import MARK_END, MARK_START, SearchHit, SessionMeta
from reflectchat.store.session_store import SessionStore, StoreError
from reflectchat.store.transfer import model_label
from reflectchat.store.turns import conversation_from
from reflectchat.ui.messages import StoreProblem
from reflectchat.ui.pane_text import PaneText
from reflectchat.ui.screens.session_dialogs import ConfirmScreen, RenameScreen
from reflectchat.ui.widgets.conversation_list import ConversationList, TurnItem
from reflectchat.ui.widgets.prompt_input import PromptInput
from reflectchat.ui.widgets.sessions_sidebar import SessionsSidebar
from reflectchat.ui.widgets.status_bar import Status, StatusBar

STORE_WARNING_EVERY_S = 30.0  # a failing store (full disk) is reported at most this often


class SessionActionsPart(App[None]):
    choice: ModelChoice
    engine: Backend | None
    conversation: Conversation
    store: SessionStore | None
    recorder: SessionRecorder | None
    _panes: dict[int, PaneText]
    _viewed: Turn | None
    _cancel: threading.Event
    _status: Status
    _store_warned: float
    _view: Callable[[Turn | None], object]  # the pane feed's (a coroutine)
    _status_for: Callable[[Turn | None], Status]
    _show_column: Callable[[str], None]
    _reveal: Callable[[Channel, str | None], None]
    go_to_reflection: Callable[[int], None]
    scroll_to_text: Callable[..., None]

    @property
    def _sidebar(self) -> SessionsSidebar:
        return self.query_one(SessionsSidebar)

    @property
    def _turn_list(self) -> ConversationList:
        return self.query_one(ConversationList)

    def _meta(self) -> SessionMeta:
        engine = self.engine
        return SessionMeta(self.choice.model_id, self.choice.quant,
                           self.conversation.system_prompt, self.conversation.sampling,
                           engine.gpu_layers if engine else None,
                           engine.n_ctx if engine else None)

    def _recorder(self, session_id: int | None) -> SessionRecorder | None:
        if self.store is None:
            return None
        return SessionRecorder(self.store, self._meta(), session_id,
                               on_error=lambda text: self.post_message(StoreProblem(text)))

    def on_store_problem(self, message: StoreProblem) -> None:
        now = time.monotonic()
        if now - self._store_warned > STORE_WARNING_EVERY_S:
            self._store_warned = now
            self.notify(f"{message.text}. The chat goes on; saving is retried.",
                        title="Session history", severity="error", timeout=15)

    async def action_new_chat(self) -> None:
        old = self.conversation
        await self._replace_conversation(
            Conversation(old.system_prompt, old.sampling, with_reasoning=old.with_reasoning),
            None)

    async def _replace_conversation(self, conversation: Conversation,
                                    session_id: int | None) -> None:
        """Show another conversation; an answer still streaming is stopped (and saved)."""
        self._cancel.set()
        self.conversation = conversation
        self.recorder = self._recorder(session_id)
        self._panes.clear()
        await self._turn_list.clear()
        await self._show_conversation()
        self._status = replace(self._status, ctx_used=0, tokens_per_second=None,
                               first_token_s=None, facts=None)
        if self.engine is not None:
            self.query_one(StatusBar).show(self._status_for(self._viewed))

    async def _show_conversation(self) -> None:
        turns = self.conversation.turns
        for turn in turns:
            self._panes[id(turn)] = PaneText.from_raw(turn.answer.raw, turn.tag_format,
                                                      turn.prefilled)
        await self._turn_list.extend(TurnItem(turn) for turn in turns)
        self._turn_list.follow()
        await self._view(turns[-1] if turns else None)
        self._sidebar.current = self.recorder.session_id if self.recorder else None
        if self.store is not None:
            self._sidebar.reload()

    async def on_sessions_sidebar_open(self, event: SessionsSidebar.Open) -> None:
        if self.store is None:
            return
        if self.recorder is not None and event.session_id == self.recorder.session_id \
                and event.hit is None:
            return
        try:
            info = self.store.session(event.session_id)
            messages = self.store.messages(event.session_id)
        except (StoreError, sqlite3.Error) as exc:
            self.notify(f"Could not open the session: {exc}", severity="error")
            self._sidebar.reload()
            return
        if self.recorder is None or event.session_id != self.recorder.session_id:
            conversation = conversation_from(info, messages)
            conversation.with_reasoning = self.conversation.with_reasoning
            await self._replace_conversation(conversation, info.id)
            if info.meta.model and info.meta.model != self.choice.model_id:
                self.notify(f"This session was with {model_label(info.meta)}; it continues with "
                            f"{self.choice.label} (Ctrl+L switches).", timeout=10)
        if event.hit is not None:
            turn_index = sum(m.role == "user" and m.seq <= event.hit.seq for m in messages) - 1
            self._reveal_hit(max(turn_index, 0), event.hit)
        else:
            self._show_column("output")
        self.query_one(PromptInput).focus()  # ready to continue the session

    def _reveal_hit(self, turn_index: int, hit: SearchHit) -> None:
        """Show the hit's turn and scroll its pane to the matched words."""
        turns = self.conversation.turns
        if not turns:
            return
        turn_index = min(turn_index, len(turns) - 1)
        self._turn_list.index = turn_index
        matched = hit.snippet.partition(MARK_START)[2].partition(MARK_END)[0]

        async def show() -> None:
            await self._view(turns[turn_index])
            if hit.reflection:
                self.go_to_reflection(hit.reflection)
            elif hit.channel == "thinking":
                self._reveal(Channel.THINKING, None)
                self.scroll_to_text(Channel.THINKING, matched, any_case=True)
            elif hit.channel == "output":
                self._show_column("output")
                self.scroll_to_text(Channel.OUTPUT, matched, any_case=True)
            else:
                self._show_column("conversation")

        self.run_worker(show())

    def on_sessions_sidebar_rename(self, event: SessionsSidebar.Rename) -> None:
        def rename(title: str | None) -> None:
            if title is None or self.store is None:
                return
            try:
                self.store.rename(event.info.id, title)
            except (StoreError, sqlite3.Error) as exc:
                self.notify(f"Could not rename: {exc}", severity="error")
            self._sidebar.reload()

        self.push_screen(RenameScreen(event.info.title), rename)

    def on_sessions_sidebar_delete(self, event: SessionsSidebar.Delete) -> None:
        info = event.info

        async def delete(sure: bool | None) -> None:
            if not sure or self.store is None:
                return
            if self.recorder is not None and self.recorder.session_id == info.id:
                await self.action_new_chat()
            try:
                self.store.delete(info.id)
            except (StoreError, sqlite3.Error) as exc:
                self.notify(f"Could not delete: {exc}", severity="error")
            self._sidebar.reload()
            self.notify(f"Deleted {info.title!r}.")

        turns = (info.messages + 1) // 2
        self.push_screen(ConfirmScreen(
            f"Delete the session {info.title!r} ({turns} turn{'s' * (turns != 1)})? "
            "This cannot be undone.", "Delete"), delete)
