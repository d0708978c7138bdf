"""The conversation and where it is kept, the base of the chat view (`chat_view.py`, which
adds answering): the conversation and its recorder in the session store, the model it is with
(`engine` and `choice`, bound down from the app), the status the chat shows, and the session
actions: a new chat, a session opened from the sidebar (at a search hit), the open session
deleted, the saved model context put back when a session opens or a model loads."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from functools import partial

from textual.containers import Vertical
from textual.message import Message
from textual.reactive import reactive, var

from reflectchat.chat.comparison import SIDES, Comparison
from reflectchat.chat.conversation import Conversation, Turn
from reflectchat.engine.base import Backend
from reflectchat.models.choice import ModelChoice
from reflectchat.store.recorder import SessionRecorder
from reflectchat.store.records import SessionMeta
from reflectchat.store.session_store import SessionStore
from reflectchat.store.transfer import model_label
from reflectchat.store.turns import compared_side
from reflectchat.ui.answer_worker import restore_context
from reflectchat.ui.messages import ContextResumed, SessionRead, StoreProblem, TurnSaved
from reflectchat.ui.widgets.answer_view import AnswerView
from reflectchat.ui.widgets.columns import Columns
from reflectchat.ui.widgets.conversation_list import (
    MAX_LISTED,
    ConversationList,
    TurnItem,
    earlier_note,
)
from reflectchat.ui.widgets.prompt_input import PromptInput
from reflectchat.ui.widgets.sessions_sidebar import SessionsSidebar
from reflectchat.ui.widgets.status_bar import AnswerStatus, control_text

STORE_WARNING_EVERY_S = 30.0  # a failing store (full disk) is reported at most this often


class ChatSession(Vertical):
    @dataclass
    class ShowCompared(Message):
        """A search hit is in the answer a comparison did not go on with: show both."""

        comparison: Comparison

    engine: reactive[Backend | None] = var(None, always_update=True)
    choice: reactive[ModelChoice] = var(None, always_update=True)  # set in __init__
    status: reactive[AnswerStatus] = var(AnswerStatus)

    def __init__(self, choice: ModelChoice, conversation: Conversation | None,
                 store: SessionStore | None, store_problem: str | None,
                 session_id: int | None) -> None:
        """`store` keeps the sessions (None: history is off, `store_problem` says why);
        `session_id` is the stored session `conversation` continues."""
        super().__init__(id="chat")
        self.set_reactive(ChatSession.choice, choice)
        self.conversation = conversation or Conversation(choice.system_prompt, choice.sampling)
        self.store, self.store_problem = store, store_problem
        self._store_warned: float | None = None  # when a failing store was last reported
        self.recorder = self.new_recorder(session_id)
        self.set_reactive(ChatSession.status,
                          AnswerStatus(control=control_text(self.conversation.sampling)))

    # -- the widgets, and the model bound down ---------------------------------------------

    @property
    def answer_view(self) -> AnswerView:
        return self.query_one(AnswerView)

    @property
    def columns(self) -> Columns:
        return self.query_one(Columns)

    @property
    def prompt(self) -> PromptInput:
        return self.query_one(PromptInput)

    @property
    def turn_list(self) -> ConversationList:
        return self.query_one(ConversationList)

    @property
    def sidebar(self) -> SessionsSidebar:
        return self.query_one(SessionsSidebar)

    def watch_engine(self, engine: Backend | None) -> None:
        if engine is not None:  # a model loaded: the session records it, and gets its context
            self.save_meta()
            self.restore_context()

    # -- the session: kept, opened, left ------------------------------------------------------

    def meta(self) -> SessionMeta:
        engine = self.engine
        return SessionMeta(self.choice.model_id, self.choice.quant,
                           self.conversation.system_prompt, self.conversation.sampling,
                           engine.gpu_layers if engine else None,
                           engine.n_ctx if engine else None)

    def new_recorder(self, session_id: int | None) -> SessionRecorder | None:
        if self.store is None:
            return None
        return SessionRecorder(self.store, self.meta(), session_id,
                               on_error=lambda text: self.post_message(StoreProblem(text)))

    def save_meta(self) -> None:
        """The session's model and settings changed: record them, off the UI thread."""
        recorder = self.recorder
        if recorder is not None:
            meta = self.meta()
            self.run_worker(lambda: recorder.update_meta(meta), thread=True, group="meta")

    def restore_context(self) -> None:
        """Put the open session's saved model context back, off the UI thread."""
        engine, recorder = self.engine, self.recorder
        if engine is not None and recorder is not None and recorder.session_id is not None:
            self.run_worker(partial(restore_context, engine, recorder.session_id,
                                    self.post_message), thread=True, group="context")

    def on_context_resumed(self, message: ContextResumed) -> None:
        self.status = replace(self.status, restored=message.text)
        self.notify(message.text, timeout=6)

    def on_turn_saved(self, message: TurnSaved) -> None:
        if message.session_id is not None:
            self.sidebar.current = message.session_id
        self.sidebar.reload()

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

    async def on_sessions_sidebar_new_chat(self) -> None:
        await self.action_new_chat()

    async def on_sessions_sidebar_delete(self, event: SessionsSidebar.Delete) -> None:
        if self.recorder is not None and self.recorder.session_id == event.info.id:
            await self.action_new_chat()  # leave it first: nothing more is written to it
        self.sidebar.delete(event.info)

    async def _replace_conversation(self, conversation: Conversation,
                                    session_id: int | None) -> None:
        """Show another conversation; an answer still streaming is stopped (and saved)."""
        self.leave()
        self.conversation = conversation
        self.recorder = self.new_recorder(session_id)
        self.answer_view.forget()
        await self.turn_list.clear()
        self.status = AnswerStatus(control=control_text(conversation.sampling))
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

    async def add_comparison(self, comparison: Comparison) -> None:
        """A prompt answered side by side (F10) joins the chat as the answer marked better
        (the first, unmarked); the session holds both already."""
        turn = comparison.chosen
        self.conversation.turns.append(turn)
        await self.turn_list.append(TurnItem(turn))
        self.turn_list.follow()
        await self.view_turn(turn)

    async def swap_turn(self, before: Turn, after: Turn) -> None:
        """The other side of a comparison was marked better: the chat goes on with it."""
        turns = self.conversation.turns
        index = next((i for i, t in enumerate(turns) if t is before), None)
        if index is None:
            return  # another chat is open now
        turns[index] = after
        item = self.turn_list.item_for(before)
        if item is not None:
            item.turn = after
            item.refresh_reply()
        if self.answer_view.viewed is before:
            await self.view_turn(after)

    async def view_turn(self, turn: Turn | None) -> None:
        """Show `turn`'s panes, and once it is whole its figures in the status bar."""
        await self.answer_view.show_turn(turn)
        if turn is None or turn.finished:
            self.status = self.status.showing(self.conversation, turn)

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
        hit, turns = message.hit, self.conversation.turns
        if hit is not None and turns:
            index = sum(m.role == "user" and m.seq <= hit.seq for m in message.messages) - 1
            turn = turns[min(max(index, 0), len(turns) - 1)]
            self.turn_list.index = self.turn_list.index_of(turn)
            await self.view_turn(turn)
            self.answer_view.show_hit(hit)
            found = next((compared_side(m.stats) for m in message.messages
                          if m.seq == hit.seq), None)
            compared = turn.comparison
            if compared is not None and compared.finished and found is not None and \
                    compared.sides[SIDES.index(found[0])] is not turn:
                self.post_message(self.ShowCompared(compared))
        elif hit is None:
            self.columns.bring("output")
        self.prompt.focus()  # ready to continue the session

    def leave(self) -> None:
        """Before another conversation replaces this one: nothing runs here to stop."""
