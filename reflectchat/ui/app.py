"""The Textual app: it composes the model host (`model_host.py`: loading, switching,
downloading), the chat (`chat_view.py`: the conversation, its session and answering), the
status bar and the footer, binds the host's model and the settings down into the chat and both
their figures into the bar, routes screens (help, settings, tune, evaluations, the model
picker) and keeps the settings: the pane toggles, themes, config.toml. It also holds the
command palette and quitting."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.notifications import SeverityLevel
from textual.reactive import reactive, var
from textual.screen import Screen
from textual.widgets import Footer

from reflectchat.chat.conversation import Conversation
from reflectchat.config import DEFAULT_THEME, ConfigFile, UIConfig
from reflectchat.engine import saved_context
from reflectchat.engine.base import Runtime
from reflectchat.models.choice import ModelChoice
from reflectchat.models.hardware import Hardware, detect
from reflectchat.paths import user_themes_dir
from reflectchat.reflection.events import Channel
from reflectchat.store.session_store import SessionStore
from reflectchat.ui import bindings
from reflectchat.ui.chat_session import ChatSession
from reflectchat.ui.chat_view import ChatView
from reflectchat.ui.compare_flow import CompareFlow
from reflectchat.ui.model_host import EngineFactory, ModelHost
from reflectchat.ui.screens.compare_screen import CompareScreen
from reflectchat.ui.screens.eval_screen import EvalScreen
from reflectchat.ui.screens.help_screen import HelpScreen
from reflectchat.ui.screens.settings_screen import ChatSettings, SettingsScreen
from reflectchat.ui.screens.tune_screen import TuneScreen
from reflectchat.ui.textual_runtime import collect_garbage_less_often
from reflectchat.ui.themes import load_themes
from reflectchat.ui.widgets.answer_view import AnswerView
from reflectchat.ui.widgets.channel_pane import ChannelPane
from reflectchat.ui.widgets.prompt_input import PromptInput
from reflectchat.ui.widgets.sessions_sidebar import SessionsSidebar
from reflectchat.ui.widgets.status_bar import StatusBar
from reflectchat.untrusted import visible

PANE_SETTING = {Channel.THINKING: "show_thinking", Channel.REFLECTION: "show_reflection"}


@dataclass(frozen=True)
class Notice:
    """A notification the app gave, as the user read it."""

    message: str
    title: str
    severity: SeverityLevel


class ReflectChatApp(App[None]):
    CSS_PATH = Path(__file__).with_name("app.tcss")  # absolute: subclasses live elsewhere
    TITLE = "reflectchat"
    BINDINGS = bindings.APP_BINDINGS

    ui_config: reactive[UIConfig] = var(UIConfig)

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
        hardware: Callable[[], Hardware] = detect,
    ) -> None:
        """`store` keeps the sessions (None: history is off, `store_problem` says why);
        `session_id` is the stored session `conversation` continues; `runtime` is how the
        model runs (F8 changes it); `choose` finds a model the picker names; `hardware` is
        the machine two models are planned on together (F10)."""
        super().__init__()
        self.config_file = config or ConfigFile()
        self._config_lock = threading.Lock()  # one write of config.toml at a time
        self.set_reactive(ReflectChatApp.ui_config, self.config_file.ui())
        self.store, self.store_problem = store, store_problem
        self.notices: list[Notice] = []
        self.file_themes: list[str] = []  # from theme files, offered in the palette
        self.host = ModelHost(choice, make_engine, choose, runtime)
        self.chat = ChatView(choice, conversation, store, store_problem, session_id,
                             self.ui_config)
        self.comparing = CompareFlow(self.host, self.chat, hardware)
        self._theme_notes = self._load_themes()  # before the first frame: no restyle after it

    def compose(self) -> ComposeResult:
        yield self.host
        yield self.chat.data_bind(config=ReflectChatApp.ui_config)
        yield StatusBar(id="status")
        yield Footer(compact=True)

    async def on_mount(self) -> None:
        collect_garbage_less_often()
        host, chat, bar = self.host, self.chat, self.query_one(StatusBar)
        self.watch(host, "choice", partial(setattr, chat, "choice"))  # the model, down
        self.watch(host, "engine", partial(setattr, chat, "engine"))
        self.watch(host, "status", partial(setattr, bar, "model_status"))  # the figures, in
        self.watch(host, "activity", partial(setattr, bar, "activity"))
        self.watch(chat, "status", partial(setattr, bar, "answer_status"))
        self.watch(chat.columns, "narrow", self._fit_footer)
        for note, severity in self._theme_notes:
            self.notify(note, title="Theme", severity=severity, timeout=10)
        for warning in self.config_file.warnings:
            self.notify(warning, title="Settings", severity="warning", timeout=10)
        self.theme_changed_signal.subscribe(self, self._theme_changed)
        if self.store is not None and self.store.notice:
            self.notify(self.store.notice, title="Session history", severity="warning",
                        timeout=20)
        elif self.store_problem:
            self.notify(f"{self.store_problem}. This chat will not be saved.",
                        title="Session history is off", severity="error", timeout=20)
        host.load(host.choice)

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = False) -> None:
        """Notifications carry text, never markup: a server's error, a path like `a[/x]` or a
        model's name is shown as it is (control characters visible), and cannot crash the
        app. (`markup` is accepted for Textual's signature and ignored.) Each is kept in
        `notices`."""
        self.notices.append(Notice(visible(message), visible(title), severity))
        super().notify(visible(message), title=visible(title), severity=severity,
                       timeout=timeout, markup=False)

    def _load_themes(self) -> list[tuple[str, SeverityLevel]]:
        """Register the theme files' themes and take the chosen theme, before the app starts
        (taken after, it restyles every widget once more); what to tell the user comes back."""
        loaded = load_themes(user_themes_dir())
        for theme in loaded.themes.values():
            self.register_theme(theme)
        self.file_themes = sorted(loaded.themes)
        notes: list[tuple[str, SeverityLevel]] = [
            (f"{problem}; it was skipped", "error") for problem in loaded.problems]
        wanted = self.ui_config.theme
        if wanted not in self.available_themes:
            notes.append((f"Theme {wanted!r} was not found; using {DEFAULT_THEME}", "warning"))
            wanted = DEFAULT_THEME
        self.theme = wanted
        return notes

    def _theme_changed(self, theme: object) -> None:
        self.save_config(replace(self.ui_config, theme=self.theme))

    # -- what the chat and the host tell ------------------------------------------------------

    def on_chat_view_no_model(self) -> None:
        self.notify(self.host.no_model(), severity="warning")

    def on_chat_view_answer_started(self) -> None:
        self.host.in_use = True

    def on_chat_view_answer_ended(self) -> None:
        self.host.in_use = False

    def on_chat_session_show_compared(self, message: ChatSession.ShowCompared) -> None:
        self.comparing.reopen(message.comparison)

    def on_answer_view_reveal(self, reveal: AnswerView.Reveal) -> None:
        """Show the pane asked for, turning it on (and the panes back from output only or the
        raw view) if it is off, then point the chat at the text."""
        config = self.ui_config
        if not getattr(config, PANE_SETTING[reveal.channel]) or config.output_only \
                or config.raw_view:
            self.save_config(replace(config, **{PANE_SETTING[reveal.channel]: True},
                                     output_only=False, raw_view=False))
        self.chat.point_at(reveal)

    # -- the settings: panes, themes, config.toml --------------------------------------------

    def save_config(self, config: UIConfig) -> None:
        """Keep the settings (written on a worker); the chat lays its columns out by them."""
        self.ui_config = config
        self._write_ui_config()

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

    def _toggle(self, name: str) -> None:
        self.save_config(replace(self.ui_config, **{name: not getattr(self.ui_config, name)}))

    def action_toggle_thinking(self) -> None:
        self._toggle("show_thinking")

    def action_toggle_reflection(self) -> None:
        self._toggle("show_reflection")

    def action_toggle_output_only(self) -> None:
        self._toggle("output_only")

    def action_toggle_raw(self) -> None:
        self._toggle("raw_view")

    def action_toggle_sessions(self) -> None:
        self._toggle("show_sessions")  # the chat moves the focus into the list, or out

    def action_search_sessions(self) -> None:
        if not self.ui_config.show_sessions:
            self.action_toggle_sessions()
        self.chat.search_sessions()

    # -- screens -----------------------------------------------------------------------------

    def action_switch_model(self) -> None:
        self.host.pick()

    def action_compare(self) -> None:
        self.comparing.begin()

    def action_cancel_download(self) -> None:
        self.host.cancel_download()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel_download":
            return self.host.downloading is not None
        if isinstance(self.screen, CompareScreen):  # the chat's panes and model are not in view
            return action in ("help", "quit", "command_palette")
        return True

    def action_settings(self) -> None:
        conversation = self.chat.conversation
        current = ChatSettings(conversation.system_prompt, conversation.sampling,
                               conversation.with_reasoning, self.host.runtime,
                               self.config_file.context_budget())
        self.push_screen(SettingsScreen(current), self._apply_settings)

    @work(thread=True, group="config")
    def _save_budget(self, budget: int) -> None:
        """The saved contexts' disk budget into config.toml, and kept to at once."""
        self.config_file.save_context_budget(budget)
        saved_context.keep_within(budget)

    def _apply_settings(self, settings: ChatSettings | None) -> None:
        if settings is None:
            return
        host, conversation = self.host, self.chat.conversation
        conversation.system_prompt = settings.system_prompt
        conversation.with_reasoning = settings.with_reasoning
        self.chat.set_sampling(settings.sampling)
        if settings.context_budget != self.config_file.context_budget():
            self._save_budget(settings.context_budget)
        if settings.runtime == host.runtime:
            self.notify("Saved; the next answers use these settings.")
        elif host.choice.endpoint is not None:
            self.notify("Saved. Context, threads and GPU layers are the server's to set.",
                        severity="warning")
        elif host.busy:
            host.runtime = settings.runtime
            self.notify("Saved; the model reloads with them once it is free (Ctrl+L).",
                        severity="warning")
        else:
            host.reload_with(settings.runtime)

    def _fit_footer(self, narrow: bool) -> None:
        """Below 120 columns the footer's keys need the room its palette key takes (^p still
        opens the palette; F1 lists it)."""
        self.query_one(Footer).show_command_palette = not narrow

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """The command palette (Ctrl+P): a command for each key, the commands without one, and
        what the answer in view offers (its code blocks, its reflections); then theme files and
        Textual's own commands."""
        chat, view = self.chat, self.chat.answer_view
        for command in bindings.COMMANDS:
            if command.action == "quit":
                continue  # Textual's own Quit is in the palette
            owner: App[None] | ChatView = chat if command.chat else self
            run = partial(owner.run_action, command.action)
            if command.key is None:
                yield SystemCommand(command.title, command.tooltip, run)
            elif owner.check_action(command.action, ()) is not False:
                shown = self.get_key_display(command.binding())
                yield SystemCommand(command.title, f"{command.tooltip} ({shown})", run)
        for n, block in enumerate(view.code_blocks(), 1):
            first = block.strip().splitlines()[0][:40] if block.strip() else ""
            yield SystemCommand(f"Copy code block {n}", _markup_literal(first),
                                partial(chat.copy_text, block, f"code block {n}"))
        for n in range(1, view.reflections_in_view() + 1):
            yield SystemCommand(f"Go to reflection {n}",
                                "Show it beside its place in the thinking",
                                partial(view.go_to_reflection, n))
        for name in self.file_themes:
            yield SystemCommand(f"Theme: {name}", "Switch to this theme",
                                partial(setattr, self, "theme", name))
        yield from super().get_system_commands(screen)

    def key_help(self) -> list[tuple[str, str]]:
        """Every key and what it does, from the bindings' own descriptions: the prompt's, the
        app's, the sessions list's and a pane's; then what needs no key of its own."""
        rows = []
        commands = [c.binding() for c in bindings.COMMANDS if c.key]
        app_keys = {b.key for b in commands}
        for owned, where in ((PromptInput.BINDINGS, ""), (commands, ""),
                             (SessionsSidebar.BINDINGS, "In the sessions list: "),
                             (ChannelPane.BINDINGS, "")):
            for binding in owned:
                assert isinstance(binding, Binding)
                if owned is not commands and binding.key in app_keys:
                    continue  # the app's own key, listed with the app's
                # a key with others beside it: each shown; one named for display: that one
                keys = [binding.key_display] if binding.key_display else binding.key.split(",")
                shown = ", ".join(self.get_key_display(Binding(k, binding.action))
                                  for k in keys)
                rows.append((shown, where + (binding.tooltip or binding.description)))
        return rows + bindings.NOT_KEYS

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.key_help()))

    def action_tune(self) -> None:
        self.push_screen(TuneScreen(self.store))

    def action_evaluations(self) -> None:
        self.push_screen(EvalScreen())

    async def action_quit(self) -> None:
        """Stop generating and loading first: llama.cpp must not run while we close it."""
        self.host.closing = True
        self.chat.leave()
        for screen in self.screen_stack:  # a comparison's answers (and loads) stop too
            if isinstance(screen, CompareScreen):
                screen.cancel.set()
        await self.workers.wait_for_complete()
        self.host.close()
        self.exit()


def _markup_literal(text: str) -> str:
    """Outside text for a place that reads markup (the palette's help): every bracket escaped,
    even one that opens no whole tag (Textual's `escape` leaves "[/li" of a cut "[/link]",
    which its parser then reads as a closing tag), and control characters visible."""
    return visible(text).replace("[", "\\[")
