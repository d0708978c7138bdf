"""The app's commands, one row each: the key, what the footer calls it, the command
palette's title, what it does and who does it (the chat view, or the app). The footer, the
help screen (F1) and the palette are all made from this table, so a command cannot be in one
and missing from another."""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding


@dataclass(frozen=True)
class Command:
    title: str  # the command palette's title
    tooltip: str  # what it does: the palette's and the help screen's text
    action: str
    key: str | None = None  # None: a command of the palette alone
    footer: str = ""  # the footer's short label ("" : the title)
    show: bool = False  # in the footer
    priority: bool = False  # before a focused widget's own binding of the key
    chat: bool = False  # the chat view's command (the conversation's); else the app's

    def binding(self) -> Binding:
        assert self.key is not None
        return Binding(self.key, self.action, self.footer or self.title, show=self.show,
                       priority=self.priority, tooltip=self.tooltip)


COMMANDS = [
    Command("Stop the answer", "Stop the answer, keeping what came so far", "stop", "escape",
            "Stop", show=True, chat=True),
    Command("Cancel the download", "Stop the quant download under way",
            "cancel_download", "escape", "Stop", show=True),
    Command("Help", "Every key and what it does", "help", "f1", show=True),
    Command("Toggle thinking pane", "Show or hide the Thinking pane", "toggle_thinking", "f2",
            "Think", show=True),
    Command("Toggle reflection pane", "Show or hide the Reflection pane", "toggle_reflection",
            "f3", "Reflect", show=True),
    Command("Toggle output only", "Output only, or all panes again", "toggle_output_only",
            "f4", "Focus", show=True),
    Command("Toggle raw stream", "The exact model text with its tags, instead of the panes",
            "toggle_raw", "f5", "Raw", show=True),
    Command("Toggle sessions", "Show or hide saved sessions and search across them",
            "toggle_sessions", "f6", "Sessions", show=True,
            priority=True),  # before the prompt's F6
    Command("Compare two answers", "Ask the prompt being typed of two setups side by side "
                                   "(another model, quant, server, effort, thinking budget or "
                                   "speculation) and mark the better answer", "compare", "f10",
            "Compare", show=True),
    Command("Regenerate", "Answer the last prompt again", "regenerate", "ctrl+r", chat=True),
    Command("New chat", "Start a new chat", "new_chat", "ctrl+n", chat=True),
    Command("Copy output", "Copy the output in view (code blocks: command palette)",
            "copy_output", "ctrl+o", chat=True),
    Command("Switch model or quant", "Load another model or quant, keeping the conversation",
            "switch_model", "ctrl+l", "Switch model"),
    Command("Free context", "Send less back to the model: earlier reasoning if it is sent, "
                            "else the oldest turn (it stays in the chat)", "free_context", "f9",
            chat=True),
    Command("Tune", "Pairs for Selective Reflection-Tuning: scores, rewrites, keep or drop",
            "tune", "ctrl+t"),
    Command("Evaluations", "Runs of `reflectchat eval`: each item's answer, wrong ones, its "
                           "panes", "evaluations", "ctrl+g"),
    Command("Reasoning effort", "Reasoning effort for the next answers: the model's own, off, "
                                "low, medium, high (F8 sets a thinking budget too)",
            "cycle_effort", "f7", "Effort", priority=True, chat=True),  # before the prompt's F7
    Command("Settings", "Edit the system prompt and sampling settings", "settings", "f8"),
    Command("Next pane", "Into the next pane in view (again: the one after), so Home, End "
                         "and the page keys move in it", "focus_pane", "ctrl+f", "Pane",
            chat=True),
    Command("Earlier turn", "Show the panes of the turn before", "select_turn(-1)",
            "ctrl+up", chat=True),
    Command("Later turn", "Show the panes of the turn after", "select_turn(1)", "ctrl+down",
            chat=True),
    Command("Quit", "Quit", "quit", "ctrl+q", priority=True),
    Command("Search sessions", "Find words in every saved session", "search_sessions"),
    Command("Export conversation", "Write the conversation as Markdown", "export", chat=True),
]
APP_BINDINGS = [c.binding() for c in COMMANDS if c.key and not c.chat]
CHAT_BINDINGS = [c.binding() for c in COMMANDS if c.key and c.chat]
LINK_ACTIONS = ("starter",)  # run by a link in a pane (the demo's starter prompts), not a command

# What the help screen lists beyond the app's keys: what happens without a key bound to it.
NOT_KEYS = [("tab, ←/→", "Below 120 columns: Tab to the column tabs, then ← and → (or a "
                         "click) switch the column in view"),
            ("any letter", "Typed outside a text field, it goes to the prompt"),
            ("^p", "Command palette: every command, themes, code blocks, reflections")]
