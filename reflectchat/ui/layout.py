"""Which columns the app shows and how: side by side from `NARROW_BELOW` columns up, one at a
time under tabs below it; the pane toggles (F2-F6), kept in the config file; and revealing a
pane at a place (a reflection and its marker in the thinking)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from textual import events
from textual.app import App
from textual.widgets import Markdown, Tab, Tabs
from textual.widgets.markdown import MarkdownBlock

from reflectchat.chat.conversation import Turn
from reflectchat.config import ConfigFile, UIConfig
from reflectchat.reflection.events import Channel
from reflectchat.ui.pane_feed import STARTER_LINK
from reflectchat.ui.pane_text import REFLECTION_LINK, THINKING_LINK
from reflectchat.ui.widgets.channel_pane import ChannelPane
from reflectchat.ui.widgets.prompt_input import PromptInput
from reflectchat.ui.widgets.sessions_sidebar import SessionsSidebar

NARROW_BELOW = 120  # columns: narrower terminals show one column at a time, under tabs
COLUMNS = ("sessions", "conversation", "thinking", "reflection", "output", "raw")
TAB_LABELS = {"sessions": "Sessions", "conversation": "Chat", "thinking": "Thinking",
              "reflection": "Reflection", "output": "Output", "raw": "Raw"}


class LayoutPart(App[None]):
    config_file: ConfigFile
    ui_config: UIConfig
    _narrow: bool
    _active_column: str
    _tab_chosen: bool  # the user picked a tab during this answer: don't switch it
    _live: Turn | None  # the turn being answered
    _refresh_raw: Callable[[], None]  # the pane feed's
    action_starter: Callable[[int], None]  # the answering part's

    def _save_config(self, config: UIConfig) -> None:
        self.ui_config = config
        try:
            self.config_file.save_ui(config)
        except OSError as exc:
            self.notify(f"Could not save settings: {exc}", severity="warning")

    def _pane(self, channel: Channel) -> ChannelPane:
        return self.query_one(f"#{channel.value}", ChannelPane)

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
            self.call_after_refresh(self.query_one(SessionsSidebar).focus_list)  # once shown
        else:
            self.query_one(PromptInput).focus()

    def action_search_sessions(self) -> None:
        if not self.ui_config.show_sessions:
            self.action_toggle_sessions()
        self.query_one(SessionsSidebar).action_search()

    # -- reflections: markers in thinking link to numbered entries -------------------------

    def on_markdown_link_clicked(self, event: Markdown.LinkClicked) -> None:
        href = event.href
        if href.startswith(REFLECTION_LINK):
            self.go_to_reflection(int(href.removeprefix(REFLECTION_LINK) or 0))
        elif href.startswith(THINKING_LINK):
            self._reveal(Channel.THINKING, f"({REFLECTION_LINK}{href.removeprefix(THINKING_LINK)})")
        elif href.startswith(STARTER_LINK):
            self.action_starter(int(href.removeprefix(STARTER_LINK) or 0))
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
        if link is not None:
            self.scroll_to_text(channel, link)

    def scroll_to_text(self, channel: Channel, text: str, any_case: bool = False) -> None:
        """Scroll `channel`'s pane to the first block whose Markdown holds `text`."""
        pane = self._pane(channel)
        wanted = text.casefold() if any_case else text
        for block in pane.document.query(MarkdownBlock):
            source = block.source or ""
            if wanted in (source.casefold() if any_case else source):
                pane.release_anchor()
                self.call_after_refresh(block.scroll_visible, top=True, animate=False)
                break
