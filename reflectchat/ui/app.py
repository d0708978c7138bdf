"""The Textual app: the conversation, and the thinking | reflection | output panes of the turn
in view, fed by a worker thread that posts batched pane text to the answer view.

The widgets own what they draw: `Columns` (sessions, chat and the answer; side by side or under
tabs), `AnswerView` (the panes of every turn seen, streaming), `StatusBar` (bound to the app's
`status` and `activity`). The app's parts, each built on `ChatAppBase` alone: `turns.py` (a
prompt to a finished answer), `model_switching.py` (loads, the model picker, downloads) and
`session_actions.py` (history). This module holds what ties them: start-up, themes, the pane
toggles, links, viewing turns, copy, export, settings, help, the command palette and quitting."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from functools import partial
from pathlib import Path

from textual import events, work
from textual.app import ComposeResult, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Input, ListView, Markdown, TextArea

from reflectchat.chat.conversation import Conversation
from reflectchat.chat.transcript import conversation_markdown
from reflectchat.config import DEFAULT_THEME, ConfigFile
from reflectchat.engine import saved_context
from reflectchat.engine.base import EFFORTS, Runtime
from reflectchat.models.choice import ModelChoice
from reflectchat.paths import exports_dir, user_themes_dir
from reflectchat.reflection.answer import Answer
from reflectchat.reflection.events import Channel
from reflectchat.store.session_store import SessionStore
from reflectchat.ui import bindings
from reflectchat.ui.chat_app_base import EngineFactory
from reflectchat.ui.clipboard import clean, copy_elsewhere, sent_by_osc52, tmux_drops_osc52
from reflectchat.ui.model_switching import ModelSwitchingPart
from reflectchat.ui.pane_text import REFLECTION_LINK, THINKING_LINK
from reflectchat.ui.screens.eval_screen import EvalScreen
from reflectchat.ui.screens.help_screen import HelpScreen
from reflectchat.ui.screens.settings_screen import ChatSettings, SettingsScreen
from reflectchat.ui.screens.tune_screen import TuneScreen
from reflectchat.ui.session_actions import SessionActionsPart
from reflectchat.ui.textual_runtime import collect_garbage_less_often
from reflectchat.ui.themes import load_themes
from reflectchat.ui.turns import AnsweringPart
from reflectchat.ui.widgets.answer_view import STARTER_LINK, AnswerView
from reflectchat.ui.widgets.channel_pane import ChannelPane, literal_markdown
from reflectchat.ui.widgets.columns import ANSWER_COLUMNS, Columns, visible_columns
from reflectchat.ui.widgets.conversation_list import MAX_LISTED, TurnItem
from reflectchat.ui.widgets.prompt_input import PromptInput
from reflectchat.ui.widgets.sessions_sidebar import SessionsSidebar
from reflectchat.ui.widgets.status_bar import StatusBar, control_text
from reflectchat.untrusted import visible


class ReflectChatApp(AnsweringPart, ModelSwitchingPart, SessionActionsPart):
    CSS_PATH = Path(__file__).with_name("app.tcss")  # absolute: subclasses live elsewhere
    TITLE = "reflectchat"
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
        super().__init__(choice, make_engine, conversation, config, choose, store,
                         store_problem, session_id, runtime)
        self.file_themes: list[str] = []  # from theme files, offered in the palette

    def compose(self) -> ComposeResult:
        yield Columns(self.store, self.store_problem)
        yield PromptInput()
        yield StatusBar(id="status").data_bind(ReflectChatApp.status, ReflectChatApp.activity)
        yield Footer(compact=True)

    async def on_mount(self) -> None:
        collect_garbage_less_often()
        self._load_themes()
        for warning in self.config_file.warnings:
            self.notify(warning, title="Settings", severity="warning", timeout=10)
        self.theme_changed_signal.subscribe(self, self._theme_changed)
        if self.store is not None and self.store.notice:
            self.notify(self.store.notice, title="Session history", severity="warning",
                        timeout=20)
        elif self.store_problem:
            self.notify(f"{self.store_problem}. This chat will not be saved.",
                        title="Session history is off", severity="error", timeout=20)
        self.columns.shown = visible_columns(self.ui_config)
        self.watch(self.columns, "narrow", self._fit_footer)
        view = self.answer_view
        view.set_reactive(AnswerView.demo, self.choice.is_demo)  # the first view shows it
        view.raw_shown = self.ui_config.raw_view
        await self.show_conversation()
        self.prompt_input.focus()
        self.load(self.choice)

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
        self.save_config(replace(self.ui_config, theme=self.theme))

    def on_key(self, event: events.Key) -> None:
        """A printable key pressed outside a text field goes to the prompt: nothing typed is
        lost (keys bound where the focus is, like the sessions list's n, r, d and /, keep
        their meaning)."""
        if not event.is_printable or not event.character or self.screen is not self.screen_stack[0]:
            return
        if isinstance(self.focused, (TextArea, Input)) or event.key in self.screen.active_bindings:
            return
        prompt = self.prompt_input
        prompt.focus()
        prompt.insert(event.character)
        event.stop()

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        if isinstance(event.text_area, PromptInput):
            self.answer_view.typed()

    # -- the pane toggles -------------------------------------------------------------------

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
        self._toggle("show_sessions")
        if self.ui_config.show_sessions:
            self.columns.bring("sessions")
            self.call_after_refresh(self.sidebar.focus_list)  # once shown
        else:
            self.prompt_input.focus()

    def action_focus_pane(self) -> None:
        """The keyboard into the answer's panes: the next pane in view gets the focus (Home,
        End and the page keys then move in it); in tabs, the next pane's tab comes forward."""
        panes = [c for c in ANSWER_COLUMNS if c in self.columns.shown]
        if not panes:
            return
        here = next((c for c in panes if self.query_one(f"#{c}").has_focus_within), None)
        column = panes[(panes.index(here) + 1) % len(panes)] if here else panes[0]
        self.columns.choose(column)
        self.call_after_refresh(self.query_one(f"#{column}").focus)

    def action_search_sessions(self) -> None:
        if not self.ui_config.show_sessions:
            self.action_toggle_sessions()
        self.sidebar.action_search()

    # -- links in the panes: reflections and their markers, the demo's starters, the web ----

    def on_markdown_link_clicked(self, event: Markdown.LinkClicked) -> None:
        href = event.href
        if href.startswith(REFLECTION_LINK):
            self.go_to_reflection(int(href.removeprefix(REFLECTION_LINK) or 0))
        elif href.startswith(THINKING_LINK):
            self.reveal(Channel.THINKING,
                        f"({REFLECTION_LINK}{href.removeprefix(THINKING_LINK)})")
        elif href.startswith(STARTER_LINK):
            self.action_starter(int(href.removeprefix(STARTER_LINK) or 0))
        elif href.startswith(("https://", "http://")):
            self.open_url(href)

    # -- viewing turns --------------------------------------------------------------------------

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

    # -- copy, export, settings, help -----------------------------------------------------

    def code_blocks_in_view(self) -> list[str]:
        viewed = self.answer_view.viewed
        output = self.answer_view.output_of(viewed) if viewed is not None else ""
        return [t.content for t in literal_markdown().parse(output) if t.type == "fence"]

    def copy_text(self, text: str, what: str) -> None:
        self._copy(clean(text), what)

    @work(thread=True, group="copy")
    def _copy(self, text: str, what: str) -> None:
        """Ask tmux whether it passes the terminal's clipboard on, and copy through tmux or
        wl-copy if not: subprocesses, so on a worker. The terminal's own clipboard escape
        (OSC 52) is written from the UI thread."""
        if tmux_drops_osc52():
            copied = copy_elsewhere(text, what)
        else:
            self.call_from_thread(self.copy_to_clipboard, text)
            copied = sent_by_osc52(text, what)
        self.call_from_thread(self.notify, copied.said, timeout=10,
                              severity="warning" if copied.how == "file" else "information")

    def action_copy_output(self) -> None:
        viewed = self.answer_view.viewed
        output = self.answer_view.output_of(viewed).strip() if viewed is not None else ""
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
        """Write the chat as Markdown, on a worker (a long chat is megabytes); an answer still
        streaming (`streaming`: its index and raw text so far) as far as its batches came."""
        for i, raw in streaming.items():
            turn = conversation.turns[i]
            conversation.turns[i] = replace(
                turn, answer=Answer.from_raw(raw, turn.tag_format, turn.prefilled))
        folder = exports_dir()
        path = folder / time.strftime("chat-%Y%m%d-%H%M%S.md")
        title = conversation.turns[0].prompt.strip().splitlines()[0][:60]
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path.write_text(conversation_markdown(conversation, title, label),
                            encoding="utf-8")
        except OSError as exc:
            self.call_from_thread(self.notify, f"Could not export: {exc}", severity="error")
            return
        self.call_from_thread(self.notify, f"Exported to {path}", timeout=10)

    def action_settings(self) -> None:
        current = ChatSettings(self.conversation.system_prompt, self.conversation.sampling,
                               self.conversation.with_reasoning, self.runtime,
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
        self.conversation.system_prompt = settings.system_prompt
        self.conversation.sampling = settings.sampling
        self.conversation.with_reasoning = settings.with_reasoning
        if settings.context_budget != self.config_file.context_budget():
            self._save_budget(settings.context_budget)
        self.status = replace(self.status, control=control_text(settings.sampling))
        self.save_meta()
        if settings.runtime == self.runtime:
            self.notify("Saved; the next answers use these settings.")
        elif self.choice.endpoint is not None:
            self.notify("Saved. Context, threads and GPU layers are the server's to set.",
                        severity="warning")
        elif self.live is not None or self.downloading is not None:
            self.runtime = settings.runtime
            self.notify("Saved; the model reloads with them once it is free (Ctrl+L).",
                        severity="warning")
        else:
            self.reload_with(settings.runtime)

    def action_cycle_effort(self) -> None:
        """The next reasoning effort for the answers to come: the model's own, off, low,
        medium, high."""
        levels: list[str | None] = [None, *EFFORTS]
        sampling = self.conversation.sampling
        effort = levels[(levels.index(sampling.effort) + 1) % len(levels)]
        self.conversation.sampling = replace(sampling, effort=effort)
        self.status = replace(self.status, control=control_text(self.conversation.sampling))
        self.save_meta()
        named = effort or "the model's own"
        self.notify(f"Reasoning effort: {named}, from the next answer.")

    def _fit_footer(self, narrow: bool) -> None:
        """Below 120 columns the footer's keys need the room its palette key takes (^p still
        opens the palette; F1 lists it)."""
        self.query_one(Footer).show_command_palette = not narrow

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """The command palette (Ctrl+P): a command for each key, the commands without one, and
        what the answer in view offers (its code blocks, its reflections); then theme files and
        Textual's own commands."""
        for command in bindings.COMMANDS:
            if command.action == "quit":
                continue  # Textual's own Quit is in the palette
            if command.key is None:
                yield SystemCommand(command.title, command.tooltip,
                                    partial(self.run_action, command.action))
            elif self.check_action(command.action, ()) is not False:
                shown = self.get_key_display(command.binding())
                yield SystemCommand(command.title, f"{command.tooltip} ({shown})",
                                    partial(self.run_action, command.action))
        for n, block in enumerate(self.code_blocks_in_view(), 1):
            first = block.strip().splitlines()[0][:40] if block.strip() else ""
            yield SystemCommand(f"Copy code block {n}", _markup_literal(first),
                                partial(self.copy_text, block, f"code block {n}"))
        for n in range(1, self.answer_view.reflections_in_view() + 1):
            yield SystemCommand(f"Go to reflection {n}",
                                "Show it beside its place in the thinking",
                                partial(self.go_to_reflection, n))
        for name in self.file_themes:
            yield SystemCommand(f"Theme: {name}", "Switch to this theme",
                                partial(setattr, self, "theme", name))
        yield from super().get_system_commands(screen)

    def key_help(self) -> list[tuple[str, str]]:
        """Every key and what it does, from the bindings' own descriptions: the prompt's, the
        app's, the sessions list's and a pane's; then what needs no key of its own."""
        rows = []
        app_keys = {b.key for b in self.BINDINGS if isinstance(b, Binding)}
        for owner in (PromptInput, self, SessionsSidebar, ChannelPane):
            for binding in owner.BINDINGS:
                assert isinstance(binding, Binding)
                if owner is not self and binding.key in app_keys:
                    continue  # the app's own key, listed with the app's
                where = "In the sessions list: " if owner is SessionsSidebar else ""
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
        self.quitting = True
        self.cancel.set()
        await self.workers.wait_for_complete()
        if self.engine is not None:
            self.engine.close()
            self.engine = None
        self.exit()


def _markup_literal(text: str) -> str:
    """Outside text for a place that reads markup (the palette's help): every bracket escaped,
    even one that opens no whole tag (Textual's `escape` leaves "[/li" of a cut "[/link]",
    which its parser then reads as a closing tag), and control characters visible."""
    return visible(text).replace("[", "\\[")
