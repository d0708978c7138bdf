"""The commands' Rich console: a reader that leaves the pipe (`| head`) ends the command with
the exit code every command uses for it (`cli/main.py`), where Rich's own console exits 1, the
code for a failure."""

from __future__ import annotations

from rich.console import Console


class CommandConsole(Console):
    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise BrokenPipeError  # cli/main.py ends quietly with EXIT_PIPE_CLOSED
