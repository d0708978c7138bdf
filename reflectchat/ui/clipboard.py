"""Copying text out of the app, honestly.

The terminal's clipboard escape (OSC 52) is the only route that works over SSH, but nothing
tells us whether the terminal acted on it. Inside tmux it is dropped unless `set-clipboard` is
on (or external), so there we ask tmux, and when it would drop it we use a clipboard command
(wl-copy, xclip, xsel, pbcopy) if one is installed, else a file, and say which and why.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

from reflectchat.paths import exports_dir

# (command, its arguments to read the clipboard text from stdin)
_COMMANDS = [("wl-copy", []), ("xclip", ["-selection", "clipboard"]),
             ("xsel", ["--clipboard", "--input"]), ("pbcopy", [])]
_CONTROLS = {c: None for c in range(0x20) if chr(c) not in "\n\t"} | {0x7F: None} | \
    {c: None for c in range(0x80, 0xA0)}


def clean(text: str) -> str:
    """The text without control characters (but newline and tab): a model's escape sequences
    must not reach whatever the user pastes into."""
    return text.replace("\r\n", "\n").translate(_CONTROLS)


@dataclass(frozen=True)
class Copied:
    how: str  # "osc52", "command" or "file"
    said: str  # the sentence for the user


def tmux_drops_osc52() -> bool:
    """Inside tmux, whether it would drop the app's clipboard escape."""
    if not os.environ.get("TMUX") or shutil.which("tmux") is None:
        return False
    try:
        done = subprocess.run(["tmux", "show-options", "-gv", "set-clipboard"],
                              capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return True
    return done.stdout.strip() not in ("on", "external")


def copy_elsewhere(text: str, what: str) -> Copied:
    """Copy through a clipboard command, else into a file: for when OSC 52 would be dropped."""
    for name, args in _COMMANDS:
        if shutil.which(name) is None:
            continue
        try:
            subprocess.run([name, *args], input=text, text=True, check=True, timeout=5)
        except (OSError, subprocess.SubprocessError):
            continue
        return Copied("command", f"Copied {what} ({len(text):,} characters) with {name}.")
    path = exports_dir() / time.strftime("copied-%Y%m%d-%H%M%S.txt")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        return Copied("file", f"Could not copy {what}: tmux drops the clipboard escape and "
                              f"writing {path} failed ({exc}).")
    return Copied("file", f"tmux would drop the clipboard escape (set-clipboard is off), so "
                          f"{what} is in {path}. To copy directly: tmux set -g set-clipboard on")


def sent_by_osc52(text: str, what: str) -> Copied:
    return Copied("osc52", f"Sent {what} ({len(text):,} characters) to the terminal's clipboard "
                           "(OSC 52); if nothing arrived, this terminal does not support it.")



def copy_text(text: str, what: str, send_osc52: Callable[[str], object]) -> Copied:
    """Copy `text` (`what` names it for the user): through the terminal's clipboard escape
    (`send_osc52` writes it) unless tmux would drop it, then a clipboard command or a file. It
    may ask tmux and run commands: call it off the UI thread."""
    if tmux_drops_osc52():
        return copy_elsewhere(text, what)
    send_osc52(text)
    return sent_by_osc52(text, what)
