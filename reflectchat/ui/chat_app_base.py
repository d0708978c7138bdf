"""What every part of the app shares, and nothing else: the model and how it runs, the
conversation and its recorder, the answer and the download under way, the settings file, the
status (bound to the status bar) and the notices given. The parts (`turns.py`,
`model_switching.py`, `session_actions.py`) each build on this class alone and never read one
another; the widgets own what is drawn."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace

from textual import work
from textual.app import App
from textual.notifications import SeverityLevel
from textual.reactive import reactive

from reflectchat.chat.conversation import Conversation, Turn
from reflectchat.config import ConfigFile, UIConfig
from reflectchat.engine import saved_context
from reflectchat.engine.base import Backend, Runtime
from reflectchat.models.choice import ModelChoice
from reflectchat.reflection.events import Channel
from reflectchat.store.recorder import SessionRecorder
from reflectchat.store.records import SessionMeta
from reflectchat.store.session_store import SessionStore
from reflectchat.ui.messages import ContextResumed, StoreProblem
from reflectchat.ui.pane_text import REFLECTION_LINK, THINKING_LINK
from reflectchat.ui.widgets.answer_view import AnswerView
from reflectchat.ui.widgets.columns import Columns, visible_columns
from reflectchat.ui.widgets.conversation_list import ConversationList
from reflectchat.ui.widgets.prompt_input import PromptInput
from reflectchat.ui.widgets.sessions_sidebar import SessionsSidebar
from reflectchat.ui.widgets.status_bar import Activity, Status, control_text
from reflectchat.untrusted import visible

# Builds the engine for a model choice and runtime; `progress` gets 0..1, False aborts.
EngineFactory = Callable[[ModelChoice, Callable[[float], bool], Runtime], Backend]
PANE_SETTING = {Channel.THINKING: "show_thinking", Channel.REFLECTION: "show_reflection"}


# what restoring says nothing of: a new chat, the context already in the model, a server
QUIET = ("none was saved", "the model holds it already", "a server keeps its own context")

@dataclass(frozen=True)
class Notice:
    """A notification the app gave, as the user read it."""

    message: str
    title: str
    severity: SeverityLevel


class ChatAppBase(App[None]):
    status: reactive[Status] = reactive(Status, always_update=True)
    activity: reactive[Activity | None] = reactive(None, always_update=True)

    def __init__(self, choice: ModelChoice, make_engine: EngineFactory,
                 conversation: Conversation | None, config: ConfigFile | None,
                 choose: Callable[[str | None, str | None], ModelChoice] | None,
                 store: SessionStore | None, store_problem: str | None,
                 session_id: int | None, runtime: Runtime | None) -> None:
        super().__init__()
        self.choice = choice
        self.runtime = runtime or Runtime()
        self.make_engine = make_engine
        self.choose = choose
        self.engine: Backend | None = None
        self.conversation = conversation or Conversation(choice.system_prompt, choice.sampling)
        self.config_file = config or ConfigFile()
        self._config_lock = threading.Lock()  # one write of config.toml at a time
        self.ui_config: UIConfig = self.config_file.ui()
        self.store = store
        self.store_problem = store_problem
        self.live: Turn | None = None  # the turn being answered
        self.cancel = threading.Event()  # stops the answer under way
        self.downloading: str | None = None  # "model quant" while one downloads
        self.download_cancel = threading.Event()
        self.quitting = False
        self.notices: list[Notice] = []
        self.set_reactive(ChatAppBase.status,
                          Status(model=choice.label, ctx_total=choice.context_length or 0,
                                 control=control_text(self.conversation.sampling)))
        self.recorder = self.new_recorder(session_id)

    # -- the widgets --------------------------------------------------------------------------

    @property
    def answer_view(self) -> AnswerView:
        return self.query_one(AnswerView)

    @property
    def columns(self) -> Columns:
        return self.query_one(Columns)

    @property
    def turn_list(self) -> ConversationList:
        return self.query_one(ConversationList)

    @property
    def sidebar(self) -> SessionsSidebar:
        return self.query_one(SessionsSidebar)

    @property
    def prompt_input(self) -> PromptInput:
        return self.query_one(PromptInput)

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = False) -> None:
        """Notifications carry text, never markup: a server's error, a path like `a[/x]` or a
        model's name is shown as it is (control characters visible), and cannot crash the
        app. (`markup` is accepted for Textual's signature and ignored.) Each is kept in
        `notices`."""
        self.notices.append(Notice(visible(message), visible(title), severity))
        super().notify(visible(message), title=visible(title), severity=severity,
                       timeout=timeout, markup=False)

    # -- the session record ---------------------------------------------------------------------

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

    def restore_context(self) -> None:
        """Put the open session's saved model context back, off the UI thread (an answer
        asked meanwhile waits for it on the engine's lock)."""
        engine, recorder = self.engine, self.recorder
        session = recorder.session_id if recorder is not None else None
        if engine is None or session is None:
            return

        def restore() -> None:
            done = saved_context.resume(engine, session)
            if done["tokens"] or done["why"] not in QUIET:
                self.post_message(ContextResumed(saved_context.resumed_text(done)))

        self.run_worker(restore, thread=True, group="context")

    def save_meta(self) -> None:
        """The session's model and settings changed: record them, off the UI thread."""
        recorder = self.recorder
        if recorder is not None:
            meta = self.meta()
            self.run_worker(lambda: recorder.update_meta(meta), thread=True, group="meta")

    # -- the status -----------------------------------------------------------------------------

    def status_for(self, turn: Turn | None) -> Status:
        """The status with the context the conversation fills, and `turn`'s speed and facts."""
        status = self.status
        last = self.conversation.turns[-1] if self.conversation.turns else None
        if last is not None and last.stats is not None:
            status = replace(status, ctx_used=last.stats.prompt_tokens
                             + last.stats.completion_tokens)
        status = replace(status, ctx_reasoning=self.conversation.reasoning_sent())
        if turn is not None and turn.stats is not None:
            stats = turn.stats
            status = replace(status, tokens_per_second=stats.tokens_per_second,
                             first_token_s=stats.time_to_first_token_s,
                             facts=turn.answer.facts,
                             speculation=stats.speculation_text() or "")
        return status

    # -- which panes are on ---------------------------------------------------------------------

    def save_config(self, config: UIConfig) -> None:
        """Keep the settings (written on a worker), and lay the columns out by them."""
        self.ui_config = config
        self._write_ui_config()
        if self.is_mounted:
            self.columns.shown = visible_columns(config)
            self.answer_view.raw_shown = config.raw_view

    async def on_unmount(self) -> None:
        """The settings' last write lands before the app is gone (the next start reads it)."""
        writes = [w for w in self.workers if w.group == "config"]
        if writes:
            await self.workers.wait_for_complete(writes)

    @work(thread=True, group="config")
    def _write_ui_config(self) -> None:
        """config.toml's [ui] as the settings are when this runs: of two quick changes, the
        later write holds the later settings whichever runs last."""
        with self._config_lock:
            try:
                self.config_file.save_ui(self.ui_config)
            except OSError as exc:
                self.call_from_thread(self.notify, f"Could not save settings: {exc}",
                                      severity="warning")

    def reveal(self, channel: Channel, link: str | None = None, switch_tab: bool = True) -> None:
        """Show `channel`'s pane (turning it on if needed) and scroll to the block with
        `link`."""
        config = self.ui_config
        if not getattr(config, PANE_SETTING[channel]) or config.output_only or config.raw_view:
            self.save_config(replace(config, **{PANE_SETTING[channel]: True},
                                     output_only=False, raw_view=False))
        if switch_tab:
            self.columns.choose(channel.value)
        if link is not None:
            self.answer_view.scroll_to_text(channel, link)

    def go_to_reflection(self, n: int) -> None:
        """Reveal reflection `n` and the place in the thinking where it occurred."""
        self.reveal(Channel.REFLECTION, f"({THINKING_LINK}{n})")
        self.reveal(Channel.THINKING, f"({REFLECTION_LINK}{n})", switch_tab=False)
