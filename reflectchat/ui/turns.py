"""The app's side of answering: a prompt starts a turn, a worker thread streams the answer
(`answer_worker.py`), and its end updates the list, the panes and the status bar. Esc stops it,
Ctrl+R answers the last prompt again."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace

from textual import work
from textual.app import App

from reflectchat.chat.answer_run import AnswerRun, length_note
from reflectchat.chat.conversation import Conversation, Turn, answer_reserve, fit_context
from reflectchat.demo.answers import STARTERS
from reflectchat.engine.base import Backend, ChatMessage, FinishReason, Sampling
from reflectchat.engine.errors import EngineError
from reflectchat.models.choice import ModelChoice
from reflectchat.models.loading import measure_answer
from reflectchat.store.recorder import SessionRecorder
from reflectchat.store.session_store import SessionStore
from reflectchat.ui.answer_worker import stream_answer
from reflectchat.ui.messages import ContextTrimmed, StreamFinished, TurnSaved
from reflectchat.ui.pane_text import PaneText
from reflectchat.ui.widgets.conversation_list import ConversationList, TurnItem
from reflectchat.ui.widgets.prompt_input import PromptInput
from reflectchat.ui.widgets.sessions_sidebar import SessionsSidebar
from reflectchat.ui.widgets.status_bar import Status, StatusBar


class AnsweringPart(App[None]):
    choice: ModelChoice
    engine: Backend | None
    conversation: Conversation
    store: SessionStore | None
    recorder: SessionRecorder | None
    _panes: dict[int, PaneText]
    _viewed: Turn | None
    _live: Turn | None
    _cancel: threading.Event
    _tab_chosen: bool
    _status: Status
    _downloading: str | None
    _download_cancel: threading.Event
    _view: Callable[[Turn | None], object]  # the pane feed's (a coroutine)
    _finish_panes: Callable[[PaneText], object]
    _show_column: Callable[[str], None]
    visible_columns: Callable[[], list[str]]

    def on_prompt_input_submitted(self, message: PromptInput.Submitted) -> None:
        if self._live is not None:
            self.notify("The model is still answering; Esc stops it.", severity="warning")
            return
        if self.engine is None:
            self.notify("The model is not loaded yet.", severity="warning")
            return
        self.query_one(PromptInput).clear()
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
            self.notify("The model is not loaded yet.", severity="warning")
            return
        self.run_worker(self._start_turn(STARTERS[n - 1]))

    async def _start_turn(self, prompt: str) -> None:
        engine = self.engine
        if engine is None or self._live is not None:
            return
        messages = self.conversation.messages_for(prompt)
        turn = Turn(prompt, self.choice.tag_format)
        self.conversation.turns.append(turn)
        self._panes[id(turn)] = PaneText()
        self._live = turn
        self._cancel = threading.Event()
        self._tab_chosen = False
        conversation = self.query_one(ConversationList)
        await conversation.append(TurnItem(turn))
        conversation.follow()
        await self._view(turn)
        self._show_column("thinking" if "thinking" in self.visible_columns() else "output")
        self._status = replace(self._status, tokens_per_second=None, first_token_s=None,
                               facts=None)
        self.query_one(StatusBar).show(self._status)
        self.refresh_bindings()
        self._generate(engine, turn, self.conversation.sampling, messages, self._cancel,
                       self.recorder)

    @work(thread=True, group="generate")
    def _generate(self, engine: Backend, turn: Turn, sampling: Sampling,
                  messages: list[ChatMessage], cancel: threading.Event,
                  recorder: SessionRecorder | None) -> None:
        if recorder is not None:  # the prompt is committed here, off the UI thread
            recorder.start_turn(turn)
            self.post_message(TurnSaved(recorder.session_id))
        n_ctx = engine.n_ctx
        try:
            messages, dropped = fit_context(messages, engine.count_tokens,
                                            n_ctx - answer_reserve(n_ctx, sampling))
        except EngineError:
            dropped = 0  # the chat template failed: generating reports it
        if dropped:
            kept = sum(m.role == "assistant" for m in messages)
            self.post_message(ContextTrimmed(dropped, kept, n_ctx))
        run = AnswerRun(engine, turn, messages, sampling, cancel, recorder)
        stream_answer(self.post_message, run)
        measure_answer(engine, run.stats)  # this machine's speed, recorded off the UI thread

    def on_turn_saved(self, message: TurnSaved) -> None:
        sidebar = self.query_one(SessionsSidebar)
        if message.session_id is not None:
            sidebar.current = message.session_id
        sidebar.reload()

    def on_context_trimmed(self, message: ContextTrimmed) -> None:
        turns = "turn" if message.dropped == 1 else f"{message.dropped} turns"
        self.notify(
            f"The oldest {turns} no longer fit the {message.n_ctx:,}-token context, so the "
            f"model does not see them for this answer; it sees the last {message.kept}. "
            "Start with a larger --ctx to keep more.", title="Context trimmed",
            severity="warning", timeout=12)

    def on_stream_finished(self, message: StreamFinished) -> None:
        turn, stats = message.turn, message.stats
        turn.stats = stats
        if self._live is turn:
            self._live = None
        self.refresh_bindings()
        if turn not in self.conversation.turns:
            return  # a new chat started while this answer was stopping
        conversation = self.query_one(ConversationList)
        item = conversation.item_for(turn)
        if item is not None:
            item.refresh_reply()
            if turn is self.conversation.turns[-1]:
                conversation.follow()
        if self.store is not None:
            self.query_one(SessionsSidebar).reload()
        if self._panes[id(turn)].reclassified:  # the live replay is close; the raw text exact
            self._panes[id(turn)] = PaneText.from_raw(turn.answer.raw, turn.tag_format,
                                                      turn.prefilled)
        else:
            self._panes[id(turn)].settle(turn.tag_format, turn.prefilled)
        if turn is self._viewed:
            # In a worker, so keys and scrolling are handled while the panes re-render.
            self.run_worker(self._finish_panes(self._panes[id(turn)]), group="render")
        self.query_one(StatusBar).show(self._status_for(turn))
        if stats.error:
            self.notify(stats.error, title="Answer failed", severity="error", timeout=15)
        elif stats.finish_reason is FinishReason.LENGTH:
            self.notify(length_note(stats, self.conversation.sampling.answer_limit,
                                    "the max answer tokens in F8"), severity="warning",
                        timeout=12)
        elif turn.stopped:
            self.notify("Stopped; the partial answer is kept.", severity="warning")

    def _status_for(self, turn: Turn | None) -> Status:
        status = self._status
        last = self.conversation.turns[-1] if self.conversation.turns else None
        if last is not None and last.stats is not None:
            status = replace(status, ctx_used=last.stats.prompt_tokens
                             + last.stats.completion_tokens)
        status = replace(status, ctx_reasoning=self.conversation.reasoning_sent())
        if turn is not None and turn.stats is not None:
            stats = turn.stats
            status = replace(status, tokens_per_second=stats.tokens_per_second,
                             first_token_s=stats.time_to_first_token_s,
                             facts=turn.answer.facts)
        self._status = status
        return status

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop":
            return self._live is not None or self._downloading is not None
        if action == "starter":
            return self.choice.is_demo and not self.conversation.turns
        return True

    def action_free_context(self) -> None:
        if self._live is not None:
            self.notify("Stop the answer first (Esc), then free context.", severity="warning")
            return
        before = self._context_sent()
        dropped = self.conversation.free_context()
        if not dropped:
            self.notify("Nothing earlier is sent back to the model: only the next prompt will "
                        "be.", title="Free context")
            return
        after = self._context_sent()
        freed = f": about {before - after:,} tokens freed" if before and after is not None \
            else ""
        self.notify(f"No longer sent back to the model: {dropped}{freed}. It stays in the chat "
                    "and in the history.", title="Context freed", timeout=10)
        if after is not None:
            self._status = replace(self._status, ctx_used=after)
        self._status = replace(self._status, ctx_reasoning=self.conversation.reasoning_sent())
        self.query_one(StatusBar).show(self._status)

    def _context_sent(self) -> int | None:
        """Tokens of what the next request would send before the new prompt."""
        if self.engine is None:
            return None
        try:
            return self.engine.count_tokens(self.conversation.messages_for(""))
        except EngineError:
            return None

    def action_stop(self) -> None:
        self._cancel.set()
        if self._live is None and self._downloading is not None:
            self._download_cancel.set()

    def action_regenerate(self) -> None:
        if self._live is not None:
            self.notify("The model is still answering; Esc stops it.", severity="warning")
            return
        if not self.conversation.turns or self.engine is None:
            return
        turn = self.conversation.turns.pop()
        self.run_worker(self._regenerate(turn))

    async def _regenerate(self, turn: Turn) -> None:
        item = self.query_one(ConversationList).item_for(turn)
        if item is not None:
            await item.remove()
        self._panes.pop(id(turn), None)
        if self.recorder is not None:
            self.recorder.drop_last_turn()
        await self._start_turn(turn.prompt)
