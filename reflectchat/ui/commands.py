"""The command palette's reflectchat commands (Ctrl+P), built fresh each time it opens so they
match the answer in view (its reflections and code blocks)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from textual.command import DiscoveryHit, Hit, Hits, Provider

if TYPE_CHECKING:
    from reflectchat.ui.app import ReflectChatApp

Command = tuple[str, str, Callable[[], object]]


class ReflectChatCommands(Provider):
    def _commands(self) -> list[Command]:
        app: ReflectChatApp = self.app  # type: ignore[assignment]
        commands: list[Command] = [
            ("Toggle thinking pane", "Show or hide the Thinking pane (F2)",
             app.action_toggle_thinking),
            ("Toggle reflection pane", "Show or hide the Reflection pane (F3)",
             app.action_toggle_reflection),
            ("Toggle output only", "Show only the output (F4)", app.action_toggle_output_only),
            ("Toggle raw stream", "The exact model text with its tags (F5)",
             app.action_toggle_raw),
            ("Toggle sessions", "Saved sessions, and search across them (F6)",
             app.action_toggle_sessions),
            ("Search sessions", "Find words in every saved session", app.action_search_sessions),
            ("Switch model or quant", "Load another model or quantization (Ctrl+L)",
             app.action_switch_model),
            ("New chat", "Start an empty conversation (Ctrl+N)", app.action_new_chat),
            ("Regenerate", "Answer the last prompt again (Ctrl+R)", app.action_regenerate),
            ("Copy output", "Copy the answer in view to the clipboard (Ctrl+O)",
             app.action_copy_output),
            ("Export conversation", "Write the conversation as Markdown", app.action_export),
            ("Free context", "Drop earlier reasoning, else the oldest turn, from what is sent "
             "back (F9)", app.action_free_context),
            ("Tune", "Your pairs for Selective Reflection-Tuning: IFD, r-IFD, rewrites, "
             "keep or drop (Ctrl+T)", app.action_tune),
            ("Settings", "System prompt and sampling (F8)", app.action_settings),
            ("Help", "Keys and panes (F1)", app.action_help),
        ]
        for name in app.file_themes:
            commands.append((f"Theme: {name}", "Switch to this theme",
                             partial(setattr, app, "theme", name)))
        for n, block in enumerate(app.code_blocks_in_view(), 1):
            first = block.strip().splitlines()[0][:40] if block.strip() else ""
            commands.append((f"Copy code block {n}", first, partial(app.copy_text, block,
                                                                    f"code block {n}")))
        for n in range(1, app.reflections_in_view() + 1):
            commands.append((f"Go to reflection {n}", "Show it beside its place in the thinking",
                             partial(app.go_to_reflection, n)))
        return commands

    async def discover(self) -> Hits:
        for name, help_text, callback in self._commands():
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, callback in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)
