"""The Textual app: the conversation, and the thinking | reflection | output panes of the turn
in view, fed by a worker thread that posts batched channel events."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from platformdirs import user_data_path
from textual import events, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.timer import Timer
from textual.widgets import Footer, ListView, Log, Markdown, Tab, Tabs
from textual.widgets.markdown import MarkdownBlock

from reflectchat.config import DEFAULT_THEME, ConfigFile, UIConfig, config_dir
from reflectchat.conversation import Conversation, Turn, answer_reserve, fit_context
from reflectchat.engine.base import Backend, ChatMessage, Sampling
from reflectchat.engine.errors import EngineError
from reflectchat.engine_args import DEFAULT_CTX, settled_choice
from reflectchat.export import conversation_markdown
from reflectchat.hardware import detect
from reflectchat.literal import visible
from reflectchat.model_choice import ModelChoice
from reflectchat.models_table import fit_rows
from reflectchat.reflection import Channel
from reflectchat.sessions.recorder import SessionRecorder
from reflectchat.sessions.records import SessionMeta
from reflectchat.sessions.store import SessionStore, StoreError
from reflectchat.sessions.transfer import model_label
from reflectchat.sessions.turns import conversation_from
from reflectchat.ui.commands import ReflectChatCommands
from reflectchat.ui.messages import (
    ContextTrimmed,
    DownloadFinished,
    DownloadProgress,
    LoadFinished,
    LoadProgress,
    StoreProblem,
    StreamBatch,
    StreamFinished,
)
from reflectchat.ui.pane_text import REFLECTION_LINK, THINKING_LINK, PaneText
from reflectchat.ui.screens.help_screen import HelpScreen
from reflectchat.ui.screens.model_picker import ModelPick, ModelPicker
from reflectchat.ui.screens.session_dialogs import ConfirmScreen, RenameScreen
from reflectchat.ui.screens.settings_screen import ChatSettings, SettingsScreen
from reflectchat.ui.streaming import stream_answer
from reflectchat.ui.themes import load_themes
from reflectchat.ui.widgets.channel_pane import ChannelPane, literal_markdown
from reflectchat.ui.widgets.conversation_list import ConversationList, TurnItem
from reflectchat.ui.widgets.prompt_input import PromptInput
from reflectchat.ui.widgets.sessions_sidebar import SessionsSidebar
from reflectchat.ui.widgets.status_bar import Status, StatusBar

NARROW_BELOW = 120  # columns: narrower terminals show one column at a time, under tabs
COLUMNS = ("sessions", "conversation", "thinking", "reflection", "output", "raw")
TAB_LABELS = {"sessions": "Sessions", "conversation": "Chat", "thinking": "Thinking",
              "reflection": "Reflection", "output": "Output", "raw": "Raw"}
HINTS = {
    Channel.THINKING: "*The model's reasoning appears here as it thinks.*",
    Channel.REFLECTION: "*Its self-corrections appear here, numbered.*",
    Channel.OUTPUT: "*The answer appears here. Type a question below and press Enter.*",
}

TYPING_HOLD_S = 0.06  # pane updates wait this long after a keystroke, so typing paints first,
TYPING_HOLD_MAX_S = 0.25  # but never longer than this
STORE_WARNING_EVERY_S = 30.0  # a failing store (full disk) is reported at most this often

# Builds the engine from a model choice; `progress` gets 0..1 and returns False to abort.
EngineFactory = Callable[[ModelChoice, Callable[[float], bool]], Backend]


class ReflectChatApp(App[None]):
    CSS_PATH = Path(__file__).with_name("app.tcss")  # absolute: subclasses live elsewhere
    TITLE = "reflectchat"
    COMMANDS = App.COMMANDS | {ReflectChatCommands}
    BINDINGS = [
        Binding("escape", "stop", "Stop", tooltip="Stop the answer, keeping what came so far"),
        Binding("f1", "help", "Help", tooltip="This screen"),
        Binding("f2", "toggle_thinking", "Think", tooltip="Show or hide the Thinking pane"),
        Binding("f3", "toggle_reflection", "Reflect",
                tooltip="Show or hide the Reflection pane"),
        Binding("f4", "toggle_output_only", "Focus", tooltip="Output only, or all panes again"),
        Binding("f5", "toggle_raw", "Raw",
                tooltip="The exact model text with its tags, instead of the panes"),
        Binding("f6", "toggle_sessions", "Sessions", priority=True,  # before the prompt's F6
                tooltip="Show or hide saved sessions and search across them"),
        Binding("ctrl+r", "regenerate", "Regenerate", show=False,
                tooltip="Answer the last prompt again"),
        Binding("ctrl+n", "new_chat", "New chat", show=False, tooltip="Start a new chat"),
        Binding("ctrl+o", "copy_output", "Copy output", show=False,
                tooltip="Copy the output in view (code blocks: command palette)"),
        Binding("ctrl+l", "switch_model", "Switch model", show=False,
                tooltip="Load another model or quant, keeping the conversation"),
        Binding("f8", "settings", "Settings", show=False,
                tooltip="Edit the system prompt and sampling settings"),
        Binding("ctrl+up", "select_turn(-1)", "Earlier turn", show=False,
                tooltip="Show the panes of the turn before"),
        Binding("ctrl+down", "select_turn(1)", "Later turn", show=False,
                tooltip="Show the panes of the turn after"),
        Binding("ctrl+q", "quit", "Quit", show=False, priority=True, tooltip="Quit"),
    ]

    def __init__(
        self,
        choice: ModelChoice,
        make_engine: EngineFactory,
        conversation: Conversation | None = None,
        config: ConfigFile | None = None,
        choose: Callable[[str | None, str | None], ModelChoice] | None = None,
        store: SessionStore | None = None,
        store_problem: str | None = None,
        session_id: int | None = None,
    ) -> None:
        """`store` keeps the sessions (None: history is off, `store_problem` says why);
        `session_id` is the stored session `conversation` continues."""
        super().__init__()
        self.choice = choice
        self._make_engine = make_engine
        self._choose = choose
        self.engine: Backend | None = None
        self.conversation = conversation or Conversation(choice.system_prompt, choice.sampling)
        self.config_file = config or ConfigFile()
        self.ui_config: UIConfig = self.config_file.ui()
        self._panes: dict[int, PaneText] = {}
        self._viewed: Turn | None = None
        self._live: Turn | None = None
        self._cancel = threading.Event()
        self._quitting = False
        self._narrow = False
        self._active_column = "output"
        self._tab_chosen = False  # the user picked a tab during this answer: don't switch it
        self._status = Status(model=choice.label, ctx_total=choice.context_length or 0)
        self.file_themes: list[str] = []  # from theme files, offered in the palette
        self.store = store
        self._store_problem = store_problem
        self._store_warned = 0.0
        self.recorder = self._recorder(session_id)
        self._pending: dict[Channel, list[str]] = {c: [] for c in Channel}  # not yet shown
        self._pending_raw = ""
        self._pending_since: float | None = None
        self._last_typed = 0.0
        self._flush_timer: Timer | None = None
        self._downloading: str | None = None  # "model quant" while one downloads
        self._download_cancel = threading.Event()

    # -- layout -------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Tabs(*(Tab(TAB_LABELS[c], id=f"tab-{c}") for c in COLUMNS), id="column-tabs",
                   active=f"tab-{self._active_column}")
        with Horizontal(id="columns"):
            yield SessionsSidebar(self.store, self._store_problem)
            yield ConversationList()
            yield ChannelPane("Thinking", id="thinking")
            yield ChannelPane("Reflection", id="reflection")
            yield ChannelPane("Output", id="output")
            raw = Log(id="raw", highlight=False)
            raw.border_title = "Raw model text (tags included)"
            yield raw
        yield PromptInput()
        yield StatusBar(id="status")
        yield Footer(compact=True)

    async def on_mount(self) -> None:
        self._load_themes()
        for warning in self.config_file.warnings:
            self.notify(warning, title="Settings", severity="warning", timeout=10)
        self.theme_changed_signal.subscribe(self, self._theme_changed)
        if self.store is not None and self.store.notice:
            self.notify(self.store.notice, title="Session history", severity="warning",
                        timeout=20)
        elif self._store_problem:
            self.notify(f"{self._store_problem}. This chat will not be saved.",
                        title="Session history is off", severity="error", timeout=20)
        await self._show_conversation()
        self._narrow = self.size.width < NARROW_BELOW
        self._apply_layout()
        self.query_one(PromptInput).focus()
        self._load(self.choice)

    def _load_themes(self) -> None:
        loaded = load_themes(config_dir() / "themes")
        for theme in loaded.themes.values():
            self.register_theme(theme)
        self.file_themes = sorted(loaded.themes)
        for problem in loaded.problems:
            self.notify(f"{problem}; it was skipped", title="Theme", severity="error",
                        timeout=10)
        wanted = self.ui_config.theme
        if wanted in self.available_themes:
            self.theme = wanted
        else:
            self.notify(f"Theme {wanted!r} was not found; using {DEFAULT_THEME}",
                        title="Theme", severity="warning")
            self.theme = DEFAULT_THEME

    def _theme_changed(self, theme: object) -> None:
        self._save_config(replace(self.ui_config, theme=self.theme))

    def _save_config(self, config: UIConfig) -> None:
        self.ui_config = config
        try:
            self.config_file.save_ui(config)
        except OSError as exc:
            self.notify(f"Could not save settings: {exc}", severity="warning")

    def on_resize(self, event: events.Resize) -> None:
        # The event's size: this handler runs before App's own, which updates `self.size`.
        narrow = event.size.width < NARROW_BELOW
        if narrow != self._narrow:
            self._narrow = narrow
            self._apply_layout()

    def visible_columns(self) -> list[str]:
        c = self.ui_config
        answer = ["raw"] if c.raw_view else [
            *(["thinking"] if c.show_thinking and not c.output_only else []),
            *(["reflection"] if c.show_reflection and not c.output_only else []),
            "output",
        ]
        if c.output_only:
            return answer
        return [*(["sessions"] if c.show_sessions else []), "conversation", *answer]

    def _apply_layout(self) -> None:
        visible = self.visible_columns()
        if self._active_column not in visible:
            self._active_column = "raw" if "raw" in visible else "output"
        tabs = self.query_one(Tabs)
        tabs.display = self._narrow
        self.set_class(self._narrow, "narrow")
        for column in COLUMNS:
            shown = column in visible
            self.query_one(f"#{column}").display = shown and (
                not self._narrow or column == self._active_column
            )
        with tabs.prevent(Tabs.TabActivated):  # our own changes are not the user's choice
            for column in COLUMNS:
                tab = tabs.query_one(f"#tab-{column}", Tab)
                if tab.display != (column in visible):
                    (tabs.show if column in visible else tabs.hide)(f"tab-{column}")
            tabs.active = f"tab-{self._active_column}"

    def on_tabs_tab_activated(self, event: Tabs.TabActivated) -> None:
        column = (event.tab.id or "").removeprefix("tab-")
        if column != self._active_column and column in self.visible_columns():
            self._active_column = column
            self._tab_chosen = self._live is not None
            self._apply_layout()

    def _show_column(self, column: str) -> None:
        """In tabs mode, bring a column to the front (if the user has not picked one)."""
        if self._narrow and column != self._active_column and not self._tab_chosen \
                and column in self.visible_columns():
            self._active_column = column
            self._apply_layout()

    # -- toggles --------------------------------------------------------------------------------

    def _toggle(self, name: str) -> None:
        config = replace(self.ui_config, **{name: not getattr(self.ui_config, name)})
        self._save_config(config)
        self._apply_layout()
        if name == "raw_view" and config.raw_view:
            self._refresh_raw()

    def action_toggle_thinking(self) -> None:
        self._toggle("show_thinking")

    def action_toggle_reflection(self) -> None:
        self._toggle("show_reflection")

    def action_toggle_output_only(self) -> None:
        self._toggle("output_only")

    def action_toggle_raw(self) -> None:
        self._toggle("raw_view")

    def action_toggle_sessions(self) -> None:
        self._toggle("show_sessions")
        if self.ui_config.show_sessions:
            self._show_column("sessions")

    def action_search_sessions(self) -> None:
        if not self.ui_config.show_sessions:
            self.action_toggle_sessions()
        self._sidebar.action_search()

    # -- model loading --------------------------------------------------------------------------

    def _load(self, choice: ModelChoice) -> None:
        self.choice = choice
        self._status = replace(self._status, model=choice.label)
        self._status_bar.loading(choice.label, 0.0)
        self._load_worker(choice)

    @work(thread=True, exclusive=True, group="load")
    def _load_worker(self, choice: ModelChoice) -> None:
        last = [0.0]

        def progress(fraction: float) -> bool:
            now = time.monotonic()
            if now - last[0] > 0.05 or fraction >= 1.0:
                last[0] = now
                self.post_message(LoadProgress(fraction))
            return not self._quitting

        try:
            engine = self._make_engine(choice, progress)
        except EngineError as exc:
            self.post_message(LoadFinished(str(exc)))
            return
        self.engine = engine
        self.post_message(LoadFinished(None))

    def on_load_progress(self, message: LoadProgress) -> None:
        if self.engine is None:
            self._status_bar.loading(self.choice.label, message.fraction)

    def on_load_finished(self, message: LoadFinished) -> None:
        if message.error:
            self._status_bar.message(f"Could not load {self.choice.label}: {message.error}")
            self.notify(message.error, title="Model not loaded", severity="error", timeout=15)
            return
        engine = self.engine
        assert engine is not None
        self.choice = settled_choice(self.choice, engine)
        note = getattr(engine, "load_note", None)
        if note:
            self.notify(note, title="Fewer GPU layers", severity="warning", timeout=15)
        if self.recorder is not None:
            self.recorder.update_meta(self._meta())
        self._status = replace(
            self._status, model=self.choice.label,
            gpu_layers=getattr(engine, "gpu_layers", 0),
            layer_count=getattr(engine, "layer_count", 0),
            ctx_total=getattr(engine, "n_ctx", self._status.ctx_total),
        )
        self._status_bar.show(self._status)

    def action_switch_model(self) -> None:
        if self._live is not None:
            self.notify("Stop the answer first (Esc), then switch models.", severity="warning")
            return
        if self._downloading is not None:
            self.notify(f"Downloading {self._downloading}; Esc cancels it.", severity="warning")
            return
        rows = fit_rows(detect(), self.choice.context_length or DEFAULT_CTX)
        self.push_screen(ModelPicker(rows, self.choice.label, self.choice.model_id),
                         self._switch_to)

    def _switch_to(self, pick: ModelPick | None) -> None:
        if pick is None or self._choose is None:
            return
        if pick.download and pick.model and pick.quant:
            self._start_download(pick.model, pick.quant)
            return
        try:
            choice = self._choose(pick.model, pick.quant)
        except Exception as exc:  # CatalogError or EngineError: both are user-facing sentences
            self.notify(str(exc), severity="error")
            return
        if self.engine is not None:
            self.engine.close()
            self.engine = None
        self._load(choice)
        self.notify(f"Loading {choice.label}; the conversation is kept.")

    # -- answering ------------------------------------------------------------------------------

    def on_prompt_input_submitted(self, message: PromptInput.Submitted) -> None:
        if self._live is not None:
            self.notify("The model is still answering; Esc stops it.", severity="warning")
            return
        if self.engine is None:
            self.notify("The model is not loaded yet.", severity="warning")
            return
        self.query_one(PromptInput).clear()
        self.run_worker(self._start_turn(message.text))

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
        if self.recorder is not None:
            new_session = self.recorder.session_id is None
            self.recorder.start_turn(turn)
            if new_session:
                self._sidebar.current = self.recorder.session_id
            self._sidebar.reload()
        item = TurnItem(turn)
        await self._conversation.append(item)
        self._conversation.index = len(self._conversation) - 1
        await self._view(turn)
        self._show_column("thinking" if "thinking" in self.visible_columns() else "output")
        self._status = replace(self._status, tokens_per_second=None, first_token_s=None,
                               reasoning_tokens=0, output_tokens=0)
        self._status_bar.show(self._status)
        self.refresh_bindings()
        self._generate(engine, turn, self.conversation.sampling, messages, self._cancel,
                       self.recorder)

    @work(thread=True, group="generate")
    def _generate(self, engine: Backend, turn: Turn, sampling: Sampling,
                  messages: list[ChatMessage], cancel: threading.Event,
                  recorder: SessionRecorder | None) -> None:
        n_ctx = engine.n_ctx
        try:
            messages, dropped = fit_context(messages, engine.count_tokens,
                                            n_ctx - answer_reserve(n_ctx, sampling))
        except EngineError:
            dropped = 0  # the chat template failed: generating reports it
        if dropped:
            kept = sum(m.role == "assistant" for m in messages)
            self.post_message(ContextTrimmed(dropped, kept, n_ctx))
        stream_answer(self.post_message, engine, turn, messages, sampling, cancel, recorder)

    def on_context_trimmed(self, message: ContextTrimmed) -> None:
        turns = "turn" if message.dropped == 1 else f"{message.dropped} turns"
        self.notify(
            f"The oldest {turns} no longer fit the {message.n_ctx:,}-token context, so the "
            f"model does not see them for this answer; it sees the last {message.kept}. "
            "Start with a larger --ctx to keep more.", title="Context trimmed",
            severity="warning", timeout=12)

    async def on_stream_batch(self, batch: StreamBatch) -> None:
        panes = self._panes.get(id(batch.turn))
        if panes is None:
            return
        fragments: dict[Channel, list[str]] = {c: [] for c in Channel}
        for event in batch.events:
            for channel, text in panes.apply(event).items():
                fragments[channel].append(text)
        panes.raw += batch.raw
        if batch.turn is self._viewed:
            for channel, parts in fragments.items():
                self._pending[channel] += parts
            self._pending_raw += batch.raw
            await self._flush_when_not_typing()
        tokens = batch.completion_tokens
        speed = None
        if batch.first_token_s is not None and batch.elapsed_s > batch.first_token_s and tokens > 1:
            speed = (tokens - 1) / (batch.elapsed_s - batch.first_token_s)
        self._status = replace(
            self._status, tokens_per_second=speed, first_token_s=batch.first_token_s,
            reasoning_tokens=batch.reasoning_tokens,
            output_tokens=tokens - batch.reasoning_tokens,
        )
        self._status_bar.show(self._status)

    def on_text_area_changed(self) -> None:
        self._last_typed = time.monotonic()

    async def _flush_when_not_typing(self) -> None:
        """Show the pending fragments, unless a key was typed a moment ago: then wait a
        little (at most TYPING_HOLD_MAX_S), so the keystroke is painted in a cheap frame of
        its own instead of waiting behind the panes'."""
        if not any(self._pending.values()) and not self._pending_raw:
            return
        now = time.monotonic()
        if self._pending_since is None:
            self._pending_since = now
        wait = min(self._last_typed + TYPING_HOLD_S,
                   self._pending_since + TYPING_HOLD_MAX_S) - now
        if wait > 0:
            if self._flush_timer is None:
                self._flush_timer = self.set_timer(wait, self._flush_after_wait)
            return
        await self._flush_panes()

    async def _flush_after_wait(self) -> None:
        self._flush_timer = None
        await self._flush_when_not_typing()

    async def _flush_panes(self) -> None:
        pending, self._pending = self._pending, {c: [] for c in Channel}
        raw, self._pending_raw = self._pending_raw, ""
        self._pending_since = None
        if self._flush_timer is not None:
            self._flush_timer.stop()
            self._flush_timer = None
        for channel, parts in pending.items():
            if parts:
                await self._pane(channel).write("".join(parts))
        if pending[Channel.OUTPUT]:
            self._show_column("output")
        if self.ui_config.raw_view and raw:
            self.query_one("#raw", Log).write(visible(raw))

    def _drop_pending(self) -> None:
        """The panes are being redrawn from the whole text: what was pending is in it."""
        self._pending = {c: [] for c in Channel}
        self._pending_raw = ""
        self._pending_since = None
        if self._flush_timer is not None:
            self._flush_timer.stop()
            self._flush_timer = None

    def on_stream_finished(self, message: StreamFinished) -> None:
        turn, stats = message.turn, message.stats
        turn.stats = stats
        if self._live is turn:
            self._live = None
        self.refresh_bindings()
        if turn not in self.conversation.turns:
            return  # a new chat started while this answer was stopping
        item = self._conversation.item_for(turn)
        if item is not None:
            item.refresh_reply()
        if self.store is not None:
            self._sidebar.reload()
        if turn is self._viewed:
            # In a worker, so keys and scrolling are handled while the panes re-render.
            self.run_worker(self._finish_panes(self._panes[id(turn)]), group="render")
        self._status_bar.show(self._status_for(turn))
        if stats.error:
            self.notify(stats.error, title="Answer failed", severity="error", timeout=15)
        elif turn.stopped:
            self.notify("Stopped; the partial answer is kept.", severity="warning")

    async def _finish_panes(self, panes: PaneText) -> None:
        await self._flush_panes()
        for channel in Channel:
            await self._pane(channel).finish(panes.text[channel])

    def _status_for(self, turn: Turn | None) -> Status:
        status = self._status
        last = self.conversation.turns[-1] if self.conversation.turns else None
        if last is not None and last.stats is not None:
            status = replace(status, ctx_used=last.stats.prompt_tokens
                             + last.stats.completion_tokens)
        if turn is not None and turn.stats is not None:
            stats = turn.stats
            status = replace(
                status, tokens_per_second=stats.tokens_per_second,
                first_token_s=stats.time_to_first_token_s,
                reasoning_tokens=turn.answer.reasoning_tokens,
                output_tokens=max(stats.completion_tokens - turn.answer.reasoning_tokens, 0),
            )
        self._status = status
        return status

    def action_stop(self) -> None:
        self._cancel.set()
        if self._live is None and self._downloading is not None:
            self._download_cancel.set()

    # -- downloading a quant --------------------------------------------------------------------

    def _start_download(self, model: str, quant: str) -> None:
        self._downloading = f"{model} {quant}"
        self._download_cancel = threading.Event()
        self._status_bar.loading(f"download of {self._downloading}", 0.0)
        self.refresh_bindings()
        self._download(model, quant, self._download_cancel)

    @work(thread=True, exclusive=True, group="download")
    def _download(self, model: str, quant: str, cancel: threading.Event) -> None:
        from reflectchat.catalog import CatalogError, load_catalog
        from reflectchat.pull import Download, PullError, remote_files

        try:
            entry = load_catalog().get(model)
            job = Download(entry.repo, remote_files(entry.repo, list(entry.quant(quant).files)))
            job.check_space()
            done, start, last = job.total - job.needed(), time.monotonic(), [0.0]
            first = done

            def progress(n: int) -> None:
                nonlocal done
                done += n
                now = time.monotonic()
                if now - last[0] > 0.2 or done >= job.total:
                    last[0] = now
                    speed = (done - first) / max(now - start, 1e-6)
                    self.post_message(DownloadProgress(done, job.total, speed))

            job.run(progress, cancel.is_set)
        except (CatalogError, PullError) as exc:
            self.post_message(DownloadFinished(model, quant, str(exc)))
            return
        self.post_message(DownloadFinished(model, quant, None))

    def on_download_progress(self, message: DownloadProgress) -> None:
        left = (message.total - message.done) / message.bytes_per_second \
            if message.bytes_per_second > 0 else 0
        self._status_bar.downloading(self._downloading or "", message.done, message.total,
                                     message.bytes_per_second, left)

    def on_download_finished(self, message: DownloadFinished) -> None:
        self._downloading = None
        self.refresh_bindings()
        if message.error:
            self.notify(message.error, title="Download stopped", severity="error", timeout=15)
            if self.engine is not None:
                self._status_bar.show(self._status)
            return
        self.notify(f"{message.model} {message.quant} is downloaded and verified; loading it.")
        self._switch_to(ModelPick(message.model, message.quant))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop":
            return self._live is not None or self._downloading is not None
        return True

    def action_regenerate(self) -> None:
        if self._live is not None:
            self.notify("The model is still answering; Esc stops it.", severity="warning")
            return
        if not self.conversation.turns or self.engine is None:
            return
        turn = self.conversation.turns.pop()
        self.run_worker(self._regenerate(turn))

    async def _regenerate(self, turn: Turn) -> None:
        item = self._conversation.item_for(turn)
        if item is not None:
            await item.remove()
        self._panes.pop(id(turn), None)
        if self.recorder is not None:
            self.recorder.drop_last_turn()
        await self._start_turn(turn.prompt)

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
        await self._conversation.clear()
        await self._show_conversation()
        self._status = replace(self._status, ctx_used=0, tokens_per_second=None,
                               first_token_s=None, reasoning_tokens=0, output_tokens=0)
        if self.engine is not None:
            self._status_bar.show(self._status_for(self._viewed))

    async def _show_conversation(self) -> None:
        turns = self.conversation.turns
        for turn in turns:
            self._panes[id(turn)] = PaneText.from_raw(turn.answer.raw, turn.tag_format,
                                                      turn.prefilled)
        await self._conversation.extend(TurnItem(turn) for turn in turns)
        if turns:
            self._conversation.index = len(turns) - 1
        await self._view(turns[-1] if turns else None)
        self._sidebar.current = self.recorder.session_id if self.recorder else None
        if self.store is not None:
            self._sidebar.reload()

    # -- sessions -------------------------------------------------------------------------------

    @property
    def _sidebar(self) -> SessionsSidebar:
        return self.query_one(SessionsSidebar)

    def _meta(self) -> SessionMeta:
        return SessionMeta(self.choice.model_id, self.choice.quant,
                           self.conversation.system_prompt, self.conversation.sampling,
                           getattr(self.engine, "gpu_layers", None),
                           getattr(self.engine, "n_ctx", None))

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
            self._reveal_hit(max(turn_index, 0), event.hit.channel, event.hit.reflection)
        else:
            self._show_column("output")
        self.query_one(PromptInput).focus()  # ready to continue the session

    def _reveal_hit(self, turn_index: int, channel: str, reflection: int) -> None:
        turns = self.conversation.turns
        if not turns:
            return
        turn_index = min(turn_index, len(turns) - 1)
        self._conversation.index = turn_index

        async def show() -> None:
            await self._view(turns[turn_index])
            if reflection:
                self.go_to_reflection(reflection)
            elif channel == "thinking":
                self._reveal(Channel.THINKING, None)
            else:
                self._show_column("conversation" if channel == "user" else "output")

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

    # -- viewing turns --------------------------------------------------------------------------

    @property
    def _conversation(self) -> ConversationList:
        return self.query_one(ConversationList)

    @property
    def _status_bar(self) -> StatusBar:
        return self.query_one(StatusBar)

    def _pane(self, channel: Channel) -> ChannelPane:
        return self.query_one(f"#{channel.value}", ChannelPane)

    async def _view(self, turn: Turn | None) -> None:
        self._viewed = turn
        self._drop_pending()
        if turn is None:
            for channel in Channel:
                await self._pane(channel).show(HINTS[channel], streaming=False)
            self.query_one("#raw", Log).clear()
            return
        await self._render_turn(turn)
        if turn.finished:
            self._status_bar.show(self._status_for(turn))

    async def _render_turn(self, turn: Turn) -> None:
        panes = self._panes[id(turn)]
        for channel in Channel:
            await self._pane(channel).show(panes.text[channel], streaming=not turn.finished)
        self._refresh_raw()

    def _refresh_raw(self) -> None:
        log = self.query_one("#raw", Log)
        log.clear()
        if self._viewed is not None:
            log.write(visible(self._panes[id(self._viewed)].raw))

    def on_list_view_selected(self, event: ListView.Selected) -> None:
        if isinstance(event.item, TurnItem) and event.item.turn is not self._viewed:
            self.run_worker(self._view(event.item.turn))
            self._show_column("output")

    def action_select_turn(self, step: int) -> None:
        turns = self.conversation.turns
        if not turns:
            return
        index = turns.index(self._viewed) if self._viewed in turns else len(turns) - 1
        index = max(0, min(len(turns) - 1, index + step))
        self._conversation.index = index
        self.run_worker(self._view(turns[index]))

    # -- reflections: markers in thinking link to numbered entries -------------------------

    def reflections_in_view(self) -> int:
        return self._panes[id(self._viewed)].reflections if self._viewed else 0

    def on_markdown_link_clicked(self, event: Markdown.LinkClicked) -> None:
        href = event.href
        if href.startswith(REFLECTION_LINK):
            self.go_to_reflection(int(href.removeprefix(REFLECTION_LINK) or 0))
        elif href.startswith(THINKING_LINK):
            self._reveal(Channel.THINKING, f"({REFLECTION_LINK}{href.removeprefix(THINKING_LINK)})")
        elif href.startswith(("https://", "http://")):
            self.open_url(href)

    def go_to_reflection(self, n: int) -> None:
        """Reveal reflection `n` and the place in the thinking where it occurred."""
        self._reveal(Channel.REFLECTION, f"({THINKING_LINK}{n})")
        self._reveal(Channel.THINKING, f"({REFLECTION_LINK}{n})", switch_tab=False)

    def _reveal(self, channel: Channel, link: str | None, switch_tab: bool = True) -> None:
        """Show `channel`'s pane (turning it on if needed) and scroll to the block with `link`."""
        setting = {Channel.THINKING: "show_thinking", Channel.REFLECTION: "show_reflection"}
        config = self.ui_config
        if not getattr(config, setting[channel]) or config.output_only or config.raw_view:
            self._save_config(replace(config, **{setting[channel]: True}, output_only=False,
                                      raw_view=False))
        if switch_tab and self._narrow:
            self._active_column = channel.value
            self._tab_chosen = True
        self._apply_layout()
        if link is None:
            return
        pane = self._pane(channel)
        for block in pane.document.query(MarkdownBlock):
            if link in (block.source or ""):
                pane.release_anchor()
                self.call_after_refresh(block.scroll_visible, top=True, animate=False)
                break

    # -- copy, export, settings, help -----------------------------------------------------

    def code_blocks_in_view(self) -> list[str]:
        if self._viewed is None:
            return []
        tokens = literal_markdown().parse(self._viewed.answer.output)
        return [t.content for t in tokens if t.type == "fence"]

    def copy_text(self, text: str, what: str) -> None:
        self.copy_to_clipboard(text)
        self.notify(f"Copied {what} ({len(text):,} characters) through the terminal's "
                    "clipboard (OSC 52).")

    def action_copy_output(self) -> None:
        if self._viewed is None or not self._viewed.answer.output.strip():
            self.notify("There is no output to copy yet.", severity="warning")
            return
        self.copy_text(self._viewed.answer.output.strip(), "the output")

    def action_export(self) -> None:
        if not self.conversation.turns:
            self.notify("Nothing to export yet.", severity="warning")
            return
        folder = user_data_path("reflectchat") / "exports"
        path = folder / time.strftime("chat-%Y%m%d-%H%M%S.md")
        title = self.conversation.turns[0].prompt.strip().splitlines()[0][:60]
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path.write_text(conversation_markdown(self.conversation, title, self.choice.label),
                            encoding="utf-8")
        except OSError as exc:
            self.notify(f"Could not export: {exc}", severity="error")
            return
        self.notify(f"Exported to {path}", timeout=10)

    def action_settings(self) -> None:
        current = ChatSettings(self.conversation.system_prompt, self.conversation.sampling,
                               self.conversation.with_reasoning)
        self.push_screen(SettingsScreen(current), self._apply_settings)

    def _apply_settings(self, settings: ChatSettings | None) -> None:
        if settings is not None:
            self.conversation.system_prompt = settings.system_prompt
            self.conversation.sampling = settings.sampling
            self.conversation.with_reasoning = settings.with_reasoning
            if self.recorder is not None:
                self.recorder.update_meta(self._meta())
            self.notify("Saved; the next answers use these settings.")

    def key_help(self) -> list[tuple[str, str]]:
        rows = [("enter", "Send the prompt"), ("^j", "New line in the prompt")]
        for binding in self.BINDINGS:
            assert isinstance(binding, Binding)
            rows.append((self.get_key_display(binding), binding.tooltip or binding.description))
        rows += [("n, r, d, /", "In the sessions list: new chat, rename, delete, search"),
                 ("end", "Follow the newest text in a pane (or click the cue)"),
                 ("^p", "Command palette: every command, themes, code blocks, reflections")]
        return rows

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.key_help()))

    # -- quitting -------------------------------------------------------------------------------

    async def action_quit(self) -> None:
        """Stop generating and loading first: llama.cpp must not run while we close it."""
        self._quitting = True
        self._cancel.set()
        await self.workers.wait_for_complete()
        if self.engine is not None:
            self.engine.close()
            self.engine = None
        self.exit()

