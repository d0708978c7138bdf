"""The conversation, as a widget: the columns (sessions, the chat, the answer's panes) and the
prompt, and answering. On top of the conversation and its session (`chat_session.py`) it owns
the turn being answered and its cancel event, and the answer worker (itself the worker's
message target); the settings it lays the columns out by (`config`) are bound down from the
app with the model. It tells the app when an answer starts and ends (the model must not be
switched under it), when a prompt finds no model loaded, and (through the answer view's
`Reveal`) which pane to turn on: the pane toggles are the app's settings.

A prompt starts a turn, a worker thread streams the answer (`answer_worker.py`) to the answer
view, and its end updates the list and the status. Esc stops it, Ctrl+R answers the last
prompt again, F9 frees context, F7 changes the reasoning effort, Ctrl+O copies the output."""

from __future__ import annotations

import asyncio
import copy
import threading
from dataclasses import dataclass, replace

from textual import events, work
from textual.app import ComposeResult
from textual.message import Message
from textual.reactive import reactive, var
from textual.widgets import Input, ListView, Markdown, TextArea

from reflectchat.chat.answer_run import end_notes
from reflectchat.chat.conversation import Conversation, Turn
from reflectchat.chat.transcript import export_markdown
from reflectchat.config import UIConfig
from reflectchat.demo.answers import STARTERS
from reflectchat.engine.base import EFFORTS, Backend, ChatMessage, Sampling
from reflectchat.engine.errors import EngineError
from reflectchat.models.choice import ModelChoice
from reflectchat.paths import exports_dir
from reflectchat.store.recorder import SessionRecorder
from reflectchat.store.session_store import SessionStore
from reflectchat.ui import bindings
from reflectchat.ui.answer_worker import answer_turn
from reflectchat.ui.chat_session import ChatSession
from reflectchat.ui.clipboard import clean, copy_text
from reflectchat.ui.messages import ContextFreed, ContextTrimmed, StreamBatch, StreamFinished
from reflectchat.ui.widgets.answer_view import STARTER_LINK, AnswerView
from reflectchat.ui.widgets.columns import ANSWER_COLUMNS, Columns, visible_columns
from reflectchat.ui.widgets.conversation_list import MAX_LISTED, TurnItem
from reflectchat.ui.widgets.prompt_input import PromptInput
from reflectchat.ui.widgets.status_bar import control_text


class ChatView(ChatSession):
    BINDINGS = bindings.CHAT_BINDINGS

    config: reactive[UIConfig] = var(UIConfig)
    shown: reactive[tuple[str, ...]] = var(("conversation", "output"))  # the columns on
    answering = var(False)

    @dataclass
    class AnswerStarted(Message):
        """The model is answering: it must not be closed or switched meanwhile."""

    @dataclass
    class AnswerEnded(Message):
        """The answer under way ended (finished, stopped or failed)."""

    @dataclass
    class NoModel(Message):
        """A prompt came while no model is loaded: the app says why."""

    def __init__(self, choice: ModelChoice, conversation: Conversation | None,
                 store: SessionStore | None, store_problem: str | None,
                 session_id: int | None, config: UIConfig) -> None:
        """As `ChatSession`'s, with the settings the columns are laid out by."""
        super().__init__(choice, conversation, store, store_problem, session_id)
        self.set_reactive(ChatView.config, config)
        self.set_reactive(ChatView.shown, visible_columns(config))
        self.live: Turn | None = None  # the turn being answered
        self.cancel = threading.Event()  # stops the answer under way

    def compose(self) -> ComposeResult:
        yield Columns(self.store, self.store_problem).data_bind(ChatView.shown,
                                                                ChatView.answering)
        yield PromptInput()

    async def on_mount(self) -> None:
        view = self.answer_view
        view.set_reactive(AnswerView.demo, self.choice.is_demo)  # the first view shows it
        view.raw_shown = self.config.raw_view
        await self.show_conversation()
        self.prompt.focus()

    # -- what is bound down --------------------------------------------------------------

    def watch_choice(self, choice: ModelChoice) -> None:
        if self.is_mounted:
            self.answer_view.demo = choice.is_demo

    def watch_config(self, old: UIConfig, config: UIConfig) -> None:
        self.shown = visible_columns(config)
        if not self.is_mounted:
            return
        self.answer_view.raw_shown = config.raw_view
        if config.show_sessions and not old.show_sessions:  # switched on: into the list
            self.columns.bring("sessions")
            self.call_after_refresh(self.sidebar.focus_list)  # once shown
        elif old.show_sessions and not config.show_sessions:
            self.prompt.focus()

    def on_key(self, event: events.Key) -> None:
        """A printable key pressed outside a text field goes to the prompt: nothing typed is
        lost (keys bound where the focus is, like the sessions list's n, r, d and /, keep
        their meaning)."""
        if not event.is_printable or not event.character:
            return
        if isinstance(self.app.focused, (TextArea, Input)) \
                or event.key in self.screen.active_bindings:
            return
        self.prompt.focus()
        self.prompt.insert(event.character)
        event.stop()

    def action_focus_pane(self) -> None:
        """The keyboard into the answer's panes: the next pane in view gets the focus (Home,
        End and the page keys then move in it); in tabs, the next pane's tab comes forward."""
        panes = [c for c in ANSWER_COLUMNS if c in self.shown]
        if not panes:
            return
        here = next((c for c in panes if self.query_one(f"#{c}").has_focus_within), None)
        column = panes[(panes.index(here) + 1) % len(panes)] if here else panes[0]
        self.columns.choose(column)
        self.call_after_refresh(self.query_one(f"#{column}").focus)

    def search_sessions(self) -> None:
        self.sidebar.action_search()

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        if isinstance(event.text_area, PromptInput):
            self.answer_view.typed()

    # -- answering ---------------------------------------------------------------------------

    def on_prompt_input_submitted(self, message: PromptInput.Submitted) -> None:
        if self.live is not None:
            self.notify("The model is still answering; Esc stops it.", severity="warning")
            return
        if self.engine is None:
            self.post_message(self.NoModel())
            return
        self.prompt.clear()
        number = message.text.strip()
        if self.check_action("starter", ()) and number in {str(n) for n in
                                                           range(1, len(STARTERS) + 1)}:
            self.action_starter(int(number))
            return
        self.run_worker(self._start_turn(message.text))

    def action_starter(self, n: int) -> None:
        """Ask the demo one of its starter prompts (a link in its empty output pane)."""
        if not self.choice.is_demo or self.conversation.turns or not 1 <= n <= len(STARTERS):
            return
        if self.engine is None:
            self.post_message(self.NoModel())
            return
        self.run_worker(self._start_turn(STARTERS[n - 1]))

    async def _start_turn(self, prompt: str) -> None:
        engine = self.engine
        if engine is None or self.live is not None:
            return
        messages = self.conversation.messages_for(prompt)
        turn = Turn(prompt, self.choice.tag_format)
        self.conversation.turns.append(turn)
        self.live = turn
        self.cancel = threading.Event()
        self.answering = True
        self.post_message(self.AnswerStarted())
        await self.turn_list.append(TurnItem(turn))
        self.turn_list.follow()
        view = self.answer_view
        await view.show_turn(turn)
        self.columns.bring("thinking" if "thinking" in self.shown else "output")
        self.status = replace(self.status, tokens_per_second=None, first_token_s=None,
                              speculation="", facts=None, restored="")
        self.refresh_bindings()
        self._generate(engine, turn, self.conversation.sampling, messages, self.cancel,
                       self.recorder, view)

    @work(thread=True, group="generate")
    def _generate(self, engine: Backend, turn: Turn, sampling: Sampling,
                  messages: list[ChatMessage], cancel: threading.Event,
                  recorder: SessionRecorder | None, view: AnswerView) -> None:
        """The answer streams to `view`, which passes each message on up to this view; its
        sampling and recorder are the turn's, taken when it started (not a later chat's)."""
        answer_turn(engine, turn, sampling, messages, cancel, recorder, self.post_message,
                    view.post_message)

    def on_context_trimmed(self, message: ContextTrimmed) -> None:
        one = message.dropped == 1
        turns, them = ("turn no longer fits", "it") if one else \
            (f"{message.dropped} turns no longer fit", "them")
        sees = f"it sees the last {message.kept}" if message.kept else \
            "it sees only the new prompt"
        self.notify(
            f"The oldest {turns} the {message.n_ctx:,}-token context, so the model does not "
            f"see {them} for this answer; {sees}. Start with a larger --ctx to keep more.",
            title="Context trimmed", severity="warning", timeout=12)

    def on_stream_batch(self, batch: StreamBatch) -> None:
        """The answer view drew the batch; the status gets its speed and facts."""
        if not self.conversation.turns or self.conversation.turns[-1] is not batch.turn:
            return  # an answer of a chat no longer shown, stopping
        self.status = replace(
            self.status, tokens_per_second=batch.tokens_per_second,
            first_token_s=batch.first_token_s, facts=batch.facts,
            ctx_used=batch.prompt_tokens + batch.completion_tokens,
            speculation=batch.speculation or "",
        )
        item = self.turn_list.item_for(batch.turn)  # the note under it: "answering…"
        if item is not None:
            item.answering(bool(batch.output.strip()))

    def on_stream_finished(self, message: StreamFinished) -> None:
        turn, stats = message.turn, message.stats
        turn.stats = stats  # finished: the answer is the UI's to read from here on
        self.answer_view.answered(turn)
        if self.live is turn:
            self.live = None
            self.answering = False
            self.post_message(self.AnswerEnded())
        self.refresh_bindings()
        if not any(t is turn for t in self.conversation.turns):
            return  # a new chat started while this answer was stopping
        item = self.turn_list.item_for(turn)
        if item is not None:
            item.refresh_reply()
            if turn is self.conversation.turns[-1]:
                self.turn_list.follow()
        if self.store is not None:
            self.sidebar.reload()
        self.status = self.status.showing(self.conversation, turn)
        for note in end_notes(turn, stats, self.conversation.sampling.max_tokens,
                              "the max answer tokens in F8"):
            self.notify(note.text, title=note.title, severity=note.severity,
                        timeout=note.timeout)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop":
            return self.live is not None
        if action == "starter":
            return self.choice.is_demo and not self.conversation.turns
        return True

    def action_stop(self) -> None:
        self.cancel.set()

    def leave(self) -> None:
        self.cancel.set()  # the answer under way stops (and is saved)

    def action_regenerate(self) -> None:
        if self.live is not None:
            self.notify("The model is still answering; Esc stops it.", severity="warning")
            return
        if not self.conversation.turns or self.engine is None:
            return
        turn = self.conversation.turns.pop()
        self.run_worker(self._regenerate(turn))

    async def _regenerate(self, turn: Turn) -> None:
        item = self.turn_list.item_for(turn)
        if item is not None:
            await item.remove()
        self.answer_view.forget(turn)
        if self.recorder is not None:  # the store's delete, off the UI thread, then the turn
            await asyncio.to_thread(self.recorder.drop_last_turn)
        await self._start_turn(turn.prompt)

    # -- what the next answers are sent -------------------------------------------------------

    def action_free_context(self) -> None:
        if self.live is not None:
            self.notify("Stop the answer first (Esc), then free context.", severity="warning")
            return
        before = self.conversation.messages_for("")
        dropped = self.conversation.free_context()
        if not dropped:
            self.notify("Nothing earlier is sent back to the model: only the next prompt will "
                        "be.", title="Free context")
            return
        self.status = replace(self.status, ctx_reasoning=self.conversation.reasoning_sent())
        self._count_freed(self.engine, dropped, before, self.conversation.messages_for(""))

    @work(thread=True, group="count")
    def _count_freed(self, engine: Backend | None, dropped: str, before: list[ChatMessage],
                     after: list[ChatMessage]) -> None:
        """Count what the next request sends, before and after (the template rendered and the
        text tokenized: too slow for the UI thread on a long chat)."""
        counts: list[int | None] = []
        for messages in (before, after):
            try:
                counts.append(engine.count_tokens(messages) if engine is not None else None)
            except EngineError:
                counts.append(None)
        self.post_message(ContextFreed(dropped, *counts))

    def on_context_freed(self, message: ContextFreed) -> None:
        before, after = message.before, message.after
        freed = f": about {before - after:,} tokens freed" if before and after is not None \
            else ""
        self.notify(f"No longer sent back to the model: {message.dropped}{freed}. It stays in "
                    "the chat and in the history.", title="Context freed", timeout=10)
        if after is not None:
            self.status = replace(self.status, ctx_used=after)

    def action_cycle_effort(self) -> None:
        """The next reasoning effort for the answers to come: the model's own, off, low,
        medium, high."""
        levels: list[str | None] = [None, *EFFORTS]
        sampling = self.conversation.sampling
        effort = levels[(levels.index(sampling.effort) + 1) % len(levels)]
        self.set_sampling(replace(sampling, effort=effort))
        named = effort or "the model's own"
        self.notify(f"Reasoning effort: {named}, from the next answer.")

    def set_sampling(self, sampling: Sampling) -> None:
        """The sampling settings of the answers to come (F7, F8): kept with the session."""
        self.conversation.sampling = sampling
        self.status = replace(self.status, control=control_text(self.conversation.sampling))
        self.save_meta()

    # -- the turn in view, links, copy, export -----------------------------------------------------

    def on_list_view_selected(self, event: ListView.Selected) -> None:
        if isinstance(event.item, TurnItem) and event.item.turn is not self.answer_view.viewed:
            self.run_worker(self.view_turn(event.item.turn))
            self.columns.bring("output")

    def action_select_turn(self, step: int) -> None:
        turns = self.conversation.turns
        if not turns:
            return
        viewed = self.answer_view.viewed
        index = next((i for i, t in enumerate(turns) if t is viewed), len(turns) - 1)
        index = max(len(turns) - MAX_LISTED, 0, min(len(turns) - 1, index + step))
        self.turn_list.index = self.turn_list.index_of(turns[index])
        self.run_worker(self.view_turn(turns[index]))

    def on_markdown_link_clicked(self, event: Markdown.LinkClicked) -> None:
        if event.href.startswith(STARTER_LINK):  # the demo's starters (the view has the rest)
            self.action_starter(int(event.href.removeprefix(STARTER_LINK) or 0))

    def point_at(self, reveal: AnswerView.Reveal) -> None:
        """Bring the revealed pane forward (the app turned it on) and scroll to its text."""
        if reveal.switch_tab:
            self.columns.choose(reveal.channel.value)
        if reveal.text is not None:
            self.answer_view.scroll_to_text(reveal.channel, reveal.text, reveal.any_case)

    def copy_text(self, text: str, what: str) -> None:
        self._copy(clean(text), what)

    @work(thread=True, group="copy")
    def _copy(self, text: str, what: str) -> None:
        """Copy through tmux, wl-copy or the terminal's clipboard escape: subprocesses, so on
        a worker (the escape is written from the UI thread)."""
        copied = copy_text(text, what, lambda t: self.app.call_from_thread(
            self.app.copy_to_clipboard, t))
        self.app.call_from_thread(self.notify, copied.said, timeout=10,
                                  severity="warning" if copied.how == "file" else "information")

    def action_copy_output(self) -> None:
        output = self.answer_view.output_in_view().strip()
        if not output:
            self.notify("There is no output to copy yet.", severity="warning")
            return
        self.copy_text(output, "the output")

    def action_export(self) -> None:
        if not self.conversation.turns:
            self.notify("Nothing to export yet.", severity="warning")
            return
        shown = copy.copy(self.conversation)  # the turns as they are now
        shown.turns = list(self.conversation.turns)
        streaming = {i: self.answer_view.raw_of(t) for i, t in enumerate(shown.turns)
                     if not t.finished}
        self._export(shown, streaming, self.choice.label)

    @work(thread=True, group="export")
    def _export(self, conversation: Conversation, streaming: dict[int, str], label: str) -> None:
        """Write the chat as Markdown, on a worker: a long chat is megabytes."""
        try:
            path = export_markdown(conversation, streaming, label, exports_dir())
        except OSError as exc:
            self.app.call_from_thread(self.notify, f"Could not export: {exc}", severity="error")
            return
        self.app.call_from_thread(self.notify, f"Exported to {path}", timeout=10)
