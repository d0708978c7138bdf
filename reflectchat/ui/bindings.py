"""The app's keys: what each does, shown in the footer, the help screen (F1) and the command
palette, whose commands are made from these (`PALETTE` titles them)."""

from __future__ import annotations

from textual.binding import Binding

BINDINGS = [
    Binding("escape", "stop", "Stop", tooltip="Stop the answer, keeping what came so far"),
    Binding("f1", "help", "Help", tooltip="Every key and what it does"),
    Binding("f2", "toggle_thinking", "Think", tooltip="Show or hide the Thinking pane"),
    Binding("f3", "toggle_reflection", "Reflect", tooltip="Show or hide the Reflection pane"),
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
    Binding("f9", "free_context", "Free context", show=False,
            tooltip="Send less back to the model: earlier reasoning if it is sent, else the "
                    "oldest turn (it stays in the chat)"),
    Binding("ctrl+t", "tune", "Tune", show=False,
            tooltip="Pairs for Selective Reflection-Tuning: scores, rewrites, keep or drop"),
    Binding("ctrl+g", "evaluations", "Evaluations", show=False,
            tooltip="Runs of `reflectchat eval`: each item's answer, wrong ones, its panes"),
    Binding("f7", "cycle_effort", "Effort", show=False, priority=True,  # before the prompt's F7
            tooltip="Reasoning effort for the next answers: the model's own, off, low, medium, "
                    "high (F8 sets a thinking budget too)"),
    Binding("f8", "settings", "Settings", show=False,
            tooltip="Edit the system prompt and sampling settings"),
    Binding("ctrl+f", "focus_pane", "Pane", show=False,
            tooltip="Into the next pane in view (again: the one after), so Home, End and the "
                    "page keys move in it"),
    Binding("ctrl+up", "select_turn(-1)", "Earlier turn", show=False,
            tooltip="Show the panes of the turn before"),
    Binding("ctrl+down", "select_turn(1)", "Later turn", show=False,
            tooltip="Show the panes of the turn after"),
    Binding("ctrl+q", "quit", "Quit", show=False, priority=True, tooltip="Quit"),
]

# Keys that belong to a widget rather than the app, for the help screen.
BEFORE = [("enter", "Send the prompt"), ("^j", "New line in the prompt")]
AFTER = [("n, r, d, /", "In the sessions list: new chat, rename, delete, search (then ↓ or "
                        "Enter goes to the results)"),
         ("tab, ←/→", "Below 120 columns: Tab to the column tabs, then ← and → (or a click) "
                      "switch the column in view"),
         ("any letter", "Typed outside a text field, it goes to the prompt"),
         ("end", "Follow the newest text in a pane (or click the cue)"),
         ("home", "Go to a pane's first line; a long answer shown from its end is then "
                  "drawn whole (or click the line over it)"),
         ("^p", "Command palette: every command, themes, code blocks, reflections")]

# The command palette's title for each key's action, and the commands that have no key.
PALETTE = {
    "stop": "Stop the answer",
    "help": "Help",
    "toggle_thinking": "Toggle thinking pane",
    "toggle_reflection": "Toggle reflection pane",
    "toggle_output_only": "Toggle output only",
    "toggle_raw": "Toggle raw stream",
    "toggle_sessions": "Toggle sessions",
    "regenerate": "Regenerate",
    "new_chat": "New chat",
    "copy_output": "Copy output",
    "switch_model": "Switch model or quant",
    "free_context": "Free context",
    "tune": "Tune",
    "evaluations": "Evaluations",
    "cycle_effort": "Reasoning effort",
    "settings": "Settings",
    "focus_pane": "Next pane",
    "select_turn(-1)": "Earlier turn",
    "select_turn(1)": "Later turn",
}
WITHOUT_KEY = [
    ("Search sessions", "Find words in every saved session", "search_sessions"),
    ("Export conversation", "Write the conversation as Markdown", "export"),
]
