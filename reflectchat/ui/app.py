"""The Textual app: the conversation, and the thinking | reflection | output panes of the turn
in view, fed by a worker thread that posts batched channel events.

The app is put together from parts, one module each: `layout.py` (columns, tabs, toggles),
`pane_feed.py` (drawing and streaming into the panes), `turns.py` (a prompt to a finished
answer), `model_switching.py` (loads, the model picker, downloads) and `session_actions.py`
(history). This module holds what ties them: start-up, themes, viewing turns, copy, export,
settings, help and quitting."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from textual import events
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.notifications import SeverityLevel
from textual.widgets import Footer, Input, ListView, Tab, Tabs, TextArea

from reflectchat.chat.conversation import Conversation, Turn
from reflectchat.chat.transcript import conversation_markdown
from reflectchat.config import DEFAULT_THEME, ConfigFile, UIConfig
from reflectchat.engine.base import Backend, Runtime
from reflectchat.models.choice import ModelChoice
from reflectchat.paths import exports_dir, user_themes_dir
from reflectchat.store.session_store import SessionStore
from reflectchat.ui import bindings
from reflectchat.ui.clipboard import clean, copy_elsewhere, sent_by_osc52, tmux_drops_osc52
from reflectchat.ui.commands import ReflectChatCommands
from reflectchat.ui.layout import COLUMNS, NARROW_BELOW, TAB_LABELS, LayoutPart
from reflectchat.ui.model_switching import EngineFactory, ModelSwitchingPart
from reflectchat.ui.pane_feed import PaneFeedPart
from reflectchat.ui.pane_text import PaneText
from reflectchat.ui.screens.help_screen import HelpScreen
from reflectchat.ui.screens.settings_screen import ChatSettings, SettingsScreen
from reflectchat.ui.screens.tune_screen import TuneScreen
from reflectchat.ui.session_actions import SessionActionsPart
from reflectchat.ui.themes import load_themes
from reflectchat.ui.turns import AnsweringPart
from reflectchat.ui.widgets.channel_pane import ChannelPane, literal_markdown
from reflectchat.ui.widgets.conversation_list import ConversationList, TurnItem
from reflectchat.ui.widgets.prompt_input import PromptInput
from reflectchat.ui.widgets.raw_view import RawView
from reflectchat.ui.widgets.sessions_sidebar import SessionsSidebar
from reflectchat.ui.widgets.status_bar import Status, StatusBar
from reflectchat.untrusted import visible


class ReflectChatApp(AnsweringPart, PaneFeedPart, ModelSwitchingPart, SessionActionsPart,
                     LayoutPart):
    CSS_PATH = Path(__file__).with_name("app.tcss")  # absolute: subclasses live elsewhere
    TITLE = "reflectchat"
    COMMANDS = App.COMMANDS | {ReflectChatCommands}
    BINDINGS = bindings.BINDINGS

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
        runtime: Runtime | None = None,
    ) -> None:
        """`store` keeps the sessions (None: history is off, `store_problem` says why);
        `session_id` is the stored session `conversation` continues; `runtime` is how the
        model runs (F8 changes it)."""
        super().__init__()
        self.choice = choice
        self.runtime = runtime or Runtime()
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
        self._tab_chosen = False
        self._status = Status(model=choice.label, ctx_total=choice.context_length or 0)
        self.file_themes: list[str] = []  # from theme files, offered in the palette
        self.store = store
        self._store_problem = store_problem
        self._store_warned = 0.0
        self.recorder = self._recorder(session_id)
        self._init_pane_feed()
        self._init_model_switching()

    def compose(self) -> ComposeResult:
        yield Tabs(*(Tab(TAB_LABELS[c], id=f"tab-{c}") for c in COLUMNS), id="column-tabs",
                   active=f"tab-{self._active_column}")
        with Horizontal(id="columns"):
            yield SessionsSidebar(self.store, self._store_problem)
            yield ConversationList()
            yield ChannelPane("Thinking", id="thinking")
            yield ChannelPane("Reflection", id="reflection")
            yield ChannelPane("Output", id="output")
            yield RawView()
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
        loaded = load_themes(user_themes_dir())
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

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = False) -> None:
        """Notifications carry text, never markup: a server's error, a path like `a[/x]` or a
        model's name is shown as it is (control characters visible), and cannot crash the
        app. (`markup` is accepted for Textual's signature and ignored.)"""
        super().notify(visible(message), title=visible(title), severity=severity,
                       timeout=timeout, markup=False)

    def on_key(self, event: events.Key) -> None:
        """A printable key pressed outside a text field goes to the prompt: nothing typed is
        lost (keys bound where the focus is, like the sessions list's n, r, d and /, keep
        their meaning)."""
        if not event.is_printable or not event.character or self.screen is not self.screen_stack[0]:
            return
        if isinstance(self.focused, (TextArea, Input)) or event.key in self.screen.active_bindings:
            return
        prompt = self.query_one(PromptInput)
        prompt.focus()
        prompt.insert(event.character)
        event.stop()

    # -- viewing turns --------------------------------------------------------------------------

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
        self._turn_list.index = index
        self.run_worker(self._view(turns[index]))

    def reflections_in_view(self) -> int:
        return self._panes[id(self._viewed)].reflections if self._viewed else 0

    # -- copy, export, settings, help -----------------------------------------------------

    def code_blocks_in_view(self) -> list[str]:
        if self._viewed is None:
            return []
        tokens = literal_markdown().parse(self._viewed.answer.output)
        return [t.content for t in tokens if t.type == "fence"]

    def copy_text(self, text: str, what: str) -> None:
        text = clean(text)
        if tmux_drops_osc52():
            copied = copy_elsewhere(text, what)
        else:
            self.copy_to_clipboard(text)
            copied = sent_by_osc52(text, what)
        self.notify(copied.said, severity="warning" if copied.how == "file" else "information",
                    timeout=10)

    def action_copy_output(self) -> None:
        if self._viewed is None or not self._viewed.answer.output.strip():
            self.notify("There is no output to copy yet.", severity="warning")
            return
        self.copy_text(self._viewed.answer.output.strip(), "the output")

    def action_export(self) -> None:
        if not self.conversation.turns:
            self.notify("Nothing to export yet.", severity="warning")
            return
        folder = exports_dir()
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
                               self.conversation.with_reasoning, self.runtime)
        self.push_screen(SettingsScreen(current), self._apply_settings)

    def _apply_settings(self, settings: ChatSettings | None) -> None:
        if settings is None:
            return
        self.conversation.system_prompt = settings.system_prompt
        self.conversation.sampling = settings.sampling
        self.conversation.with_reasoning = settings.with_reasoning
        if self.recorder is not None:
            self.recorder.update_meta(self._meta())
        if settings.runtime == self.runtime:
            self.notify("Saved; the next answers use these settings.")
        elif self.choice.endpoint is not None:
            self.notify("Saved. Context, threads and GPU layers are the server's to set.",
                        severity="warning")
        elif self._live is not None or self._downloading is not None:
            self.runtime = settings.runtime
            self.notify("Saved; the model reloads with them once it is free (Ctrl+L).",
                        severity="warning")
        else:
            self.reload_with(settings.runtime)

    def key_help(self) -> list[tuple[str, str]]:
        rows = list(bindings.BEFORE)
        for binding in self.BINDINGS:
            assert isinstance(binding, Binding)
            rows.append((self.get_key_display(binding), binding.tooltip or binding.description))
        return rows + bindings.AFTER

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.key_help()))

    def action_tune(self) -> None:
        self.push_screen(TuneScreen(self.store))

    async def action_quit(self) -> None:
        """Stop generating and loading first: llama.cpp must not run while we close it."""
        self._quitting = True
        self._cancel.set()
        await self.workers.wait_for_complete()
        if self.engine is not None:
            self.engine.close()
            self.engine = None
        self.exit()
