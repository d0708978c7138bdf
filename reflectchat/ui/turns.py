"""The app's side of answering: a prompt starts a turn, a worker thread streams the answer
(`answer_worker.py`) to the answer view, and its end updates the list and the status bar. Esc
stops it, Ctrl+R answers the last prompt again, F9 frees context."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import replace

from textual import work

from reflectchat.chat.answer_run import LOOP_NOTE, AnswerRun, length_note
from reflectchat.chat.conversation import Turn, answer_reserve, fit_context
from reflectchat.config import ConfigFile
from reflectchat.demo.answers import STARTERS
from reflectchat.engine import saved_context
from reflectchat.engine.base import Backend, ChatMessage, FinishReason, Sampling
from reflectchat.engine.errors import EngineError
from reflectchat.models.loading import measure_answer
from reflectchat.store.recorder import SessionRecorder
from reflectchat.ui.answer_worker import stream_answer
from reflectchat.ui.chat_app_base import ChatAppBase
from reflectchat.ui.messages import (
    ContextFreed,
    ContextResumed,
    ContextTrimmed,
    StreamBatch,
    StreamFinished,
    TurnSaved,
)
from reflectchat.ui.widgets.answer_view import AnswerView
from reflectchat.ui.widgets.conversation_list import TurnItem
from reflectchat.ui.widgets.prompt_input import PromptInput
from reflectchat.ui.widgets.status_bar import Problem


class AnsweringPart(ChatAppBase):
    def on_prompt_input_submitted(self, message: PromptInput.Submitted) -> None:
        if self.live is not None:
            self.notify("The model is still answering; Esc stops it.", severity="warning")
            return
        if self.engine is None:
            self.notify(self._no_model(), severity="warning")
            return
        self.prompt_input.clear()
        number = message.text.strip()
        if self.check_action("starter", ()) and number in {str(n) for n in
                                                           range(1, len(STARTERS) + 1)}:
            self.action_starter(int(number))
            return
        self.run_worker(self._start_turn(message.text))

    def _no_model(self) -> str:
        """Why there is no model to answer: still loading, or none loaded at all."""
        if isinstance(self.activity, Problem):
            return "No model is loaded: its load failed (the message above says why). Ctrl+L " \
                   "picks a model or quant."
        return "The model is still loading; the bar below shows how far. Ctrl+L picks another."

    def action_starter(self, n: int) -> None:
        """Ask the demo one of its starter prompts (a link in its empty output pane)."""
        if not self.choice.is_demo or self.conversation.turns or not 1 <= n <= len(STARTERS):
            return
        if self.engine is None:
            self.notify(self._no_model(), severity="warning")
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
        self.columns.answering(True)
        await self.turn_list.append(TurnItem(turn))
        self.turn_list.follow()
        view = self.answer_view
        await view.show_turn(turn)
        self.columns.bring("thinking" if "thinking" in self.columns.shown else "output")
        self.status = replace(self.status, tokens_per_second=None, first_token_s=None,
                              speculation="",
                              facts=None, restored="")
        self.refresh_bindings()
        self._generate(engine, turn, self.conversation.sampling, messages, self.cancel,
                       self.recorder, view)

    @work(thread=True, group="generate")
    def _generate(self, engine: Backend, turn: Turn, sampling: Sampling,
                  messages: list[ChatMessage], cancel: threading.Event,
                  recorder: SessionRecorder | None, view: AnswerView) -> None:
        """The answer streams to `view`, which passes each message on up to the app."""
        session = None
        if recorder is not None:  # the prompt is committed here, off the UI thread
            recorder.start_turn(turn)
            session = recorder.session_id
            self.post_message(TurnSaved(session))
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
        stream_answer(view.post_message, run)
        measure_answer(engine, run.stats)  # this machine's speed, recorded off the UI thread
        if session is not None:  # for the next time this session opens (within the budget)
            saved_context.keep(engine, session, ConfigFile().context_budget())

    def on_context_resumed(self, message: ContextResumed) -> None:
        self.status = replace(self.status, restored=message.text)
        self.notify(message.text, timeout=6)

    def on_turn_saved(self, message: TurnSaved) -> None:
        sidebar = self.sidebar
        if message.session_id is not None:
            sidebar.current = message.session_id
        sidebar.reload()

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
        """The answer view drew the batch; the status bar gets its speed and facts."""
        if not self.conversation.turns or self.conversation.turns[-1] is not batch.turn:
            return  # an answer of a chat no longer shown, stopping
        tokens = batch.completion_tokens
        speed = None
        if batch.first_token_s is not None and batch.elapsed_s > batch.first_token_s and tokens > 1:
            speed = (tokens - 1) / (batch.elapsed_s - batch.first_token_s)
        self.status = replace(
            self.status, tokens_per_second=speed, first_token_s=batch.first_token_s,
            facts=batch.facts, ctx_used=batch.prompt_tokens + tokens,
            speculation=batch.speculation or "",
        )
        item = self.turn_list.item_for(batch.turn)  # the note under it: "answering…"
        if item is not None:
            item.answering(bool(batch.output.strip()))

    def on_stream_finished(self, message: StreamFinished) -> None:
        turn, stats = message.turn, message.stats
        turn.stats = stats
        if self.live is turn:
            self.live = None
            self.columns.answering(False)
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
        self.status = self.status_for(turn)
        if stats.error:
            self.notify(stats.error, title="Answer failed", severity="error", timeout=15)
        elif stats.finish_reason is FinishReason.LENGTH:
            self.notify(length_note(stats, self.conversation.sampling.max_tokens,
                                    "the max answer tokens in F8"), severity="warning",
                        timeout=12)
        elif stats.finish_reason is FinishReason.LOOP:
            self.notify(LOOP_NOTE, severity="warning", timeout=12)
        elif turn.stopped:
            self.notify("Stopped; the partial answer is kept.", severity="warning")
        if stats.reasoning_note:
            self.notify(stats.reasoning_note.capitalize() + ".", severity="information")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop":
            return self.live is not None or self.downloading is not None
        if action == "starter":
            return self.choice.is_demo and not self.conversation.turns
        return True

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

    def action_stop(self) -> None:
        self.cancel.set()
        if self.live is None and self.downloading is not None:
            self.download_cancel.set()

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
