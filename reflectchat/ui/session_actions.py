"""The app's side of session history: recording the conversation in view, opening a session
from the sidebar (or a search hit in it), renaming and deleting, and starting a new chat."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import replace

from textual import work
from textual.worker import get_current_worker

from reflectchat.chat.conversation import Conversation, Turn
from reflectchat.reflection.events import Channel
from reflectchat.store.records import MARK_END, MARK_START, SearchHit
from reflectchat.store.session_store import StoreError
from reflectchat.store.transfer import model_label
from reflectchat.store.turns import conversation_from
from reflectchat.ui.chat_app_base import ChatAppBase
from reflectchat.ui.messages import SessionRead, StoreProblem
from reflectchat.ui.screens.session_dialogs import ConfirmScreen, RenameScreen
from reflectchat.ui.widgets.conversation_list import MAX_LISTED, TurnItem, earlier_note
from reflectchat.ui.widgets.sessions_sidebar import SessionsSidebar
from reflectchat.ui.widgets.status_bar import control_text

STORE_WARNING_EVERY_S = 30.0  # a failing store (full disk) is reported at most this often


class SessionActionsPart(ChatAppBase):
    _store_warned: float | None = None  # when a failing store was last reported

    def on_store_problem(self, message: StoreProblem) -> None:
        now = time.monotonic()
        if self._store_warned is None or now - self._store_warned > STORE_WARNING_EVERY_S:
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
        self.cancel.set()
        self.conversation = conversation
        self.recorder = self.new_recorder(session_id)
        self.answer_view.forget()
        await self.turn_list.clear()
        self.status = replace(self.status, ctx_used=0, tokens_per_second=None, speculation="",
                              first_token_s=None, facts=None, restored="",
                              control=control_text(conversation.sampling))
        await self.show_conversation()
        self.restore_context()  # a saved session opened: its context, before the next answer

    async def show_conversation(self) -> None:
        """Fill the chat list and show the last turn (its panes are read when first shown)."""
        turns = self.conversation.turns
        listed = turns[-MAX_LISTED:]
        if len(listed) < len(turns):
            session = self.recorder.session_id if self.recorder else None
            await self.turn_list.extend([earlier_note(len(turns) - len(listed), session)])
        await self.turn_list.extend(TurnItem(turn) for turn in listed)
        self.turn_list.follow()
        await self.view_turn(turns[-1] if turns else None)
        self.sidebar.current = self.recorder.session_id if self.recorder else None
        if self.store is not None:
            self.sidebar.reload()

    async def view_turn(self, turn: Turn | None) -> None:
        """Show `turn`'s panes, and once it is whole its figures in the status bar."""
        await self.answer_view.show_turn(turn)
        if turn is None or turn.finished:
            self.status = self.status_for(turn)

    def on_sessions_sidebar_open(self, event: SessionsSidebar.Open) -> None:
        if self.store is None:
            return
        if self.recorder is not None and event.session_id == self.recorder.session_id \
                and event.hit is None:
            return
        self._read_session(event.session_id, event.hit)

    @work(thread=True, exclusive=True, group="open-session")
    def _read_session(self, session_id: int, hit: SearchHit | None) -> None:
        """Read a session and parse its answers on a worker: a long one takes seconds."""
        assert self.store is not None
        try:
            info = self.store.session(session_id)
            messages = self.store.messages(session_id)
        except (StoreError, sqlite3.Error) as exc:
            self.post_message(SessionRead(session_id, hit, error=str(exc)))
            return
        conversation = None
        if self.recorder is None or session_id != self.recorder.session_id:
            conversation = conversation_from(info, messages)
        if not get_current_worker().is_cancelled:  # another session asked for meanwhile
            self.post_message(SessionRead(session_id, hit, info, messages, conversation))

    async def on_session_read(self, message: SessionRead) -> None:
        if message.error is not None or message.info is None or message.messages is None:
            self.notify(f"Could not open the session: {message.error}", severity="error")
            self.sidebar.reload()
            return
        info, conversation = message.info, message.conversation
        if conversation is not None and (self.recorder is None
                                         or info.id != self.recorder.session_id):
            conversation.with_reasoning = self.conversation.with_reasoning
            await self._replace_conversation(conversation, info.id)
            if info.meta.model and info.meta.model != self.choice.model_id:
                self.notify(f"This session was with {model_label(info.meta)}; it continues with "
                            f"{self.choice.label} (Ctrl+L switches).", timeout=10)
        hit = message.hit
        if hit is not None:
            turn_index = sum(m.role == "user" and m.seq <= hit.seq
                             for m in message.messages) - 1
            self._reveal_hit(max(turn_index, 0), hit)
        else:
            self.columns.bring("output")
        self.prompt_input.focus()  # ready to continue the session

    def _reveal_hit(self, turn_index: int, hit: SearchHit) -> None:
        """Show the hit's turn and scroll its pane to the matched words."""
        turns = self.conversation.turns
        if not turns:
            return
        turn_index = min(turn_index, len(turns) - 1)
        self.turn_list.index = self.turn_list.index_of(turns[turn_index])
        matched = hit.snippet.partition(MARK_START)[2].partition(MARK_END)[0]

        async def show() -> None:
            await self.view_turn(turns[turn_index])
            if hit.reflection:
                self.go_to_reflection(hit.reflection)
            elif hit.channel == "thinking":
                self.reveal(Channel.THINKING)
                self.answer_view.scroll_to_text(Channel.THINKING, matched, any_case=True)
            elif hit.channel == "output":
                self.columns.bring("output")
                self.answer_view.scroll_to_text(Channel.OUTPUT, matched, any_case=True)
            else:
                self.columns.bring("conversation")

        self.run_worker(show())

    def on_sessions_sidebar_rename(self, event: SessionsSidebar.Rename) -> None:
        def rename(title: str | None) -> None:
            if title is not None and self.store is not None:
                self._change_session(event.info.id, title, None)

        self.push_screen(RenameScreen(event.info.title), rename)

    def on_sessions_sidebar_delete(self, event: SessionsSidebar.Delete) -> None:
        info = event.info

        async def delete(sure: bool | None) -> None:
            if not sure or self.store is None:
                return
            if self.recorder is not None and self.recorder.session_id == info.id:
                await self.action_new_chat()
            self._change_session(info.id, None, f"Deleted {info.title!r}.")

        turns = (info.messages + 1) // 2
        self.push_screen(ConfirmScreen(
            f"Delete the session {info.title!r} ({turns} turn{'s' * (turns != 1)})? "
            "This cannot be undone.", "Delete"), delete)

    @work(thread=True, group="change-session")
    def _change_session(self, session_id: int, title: str | None, done: str | None) -> None:
        """Rename a session (`title`) or delete it (none), on a worker: a session of thousands
        of turns takes its store's time to delete; `done` is said once it is."""
        assert self.store is not None
        try:
            if title is not None:
                self.store.rename(session_id, title)
            else:
                self.store.delete(session_id)
        except (StoreError, sqlite3.Error) as exc:
            what = "rename" if title is not None else "delete"
            self.call_from_thread(self.notify, f"Could not {what}: {exc}", severity="error")
            done = None
        self.call_from_thread(self.sidebar.reload)
        if done:
            self.call_from_thread(self.notify, done)
