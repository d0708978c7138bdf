"""The `reflectchat` command: parse the arguments, then run the command's module. Each module
is imported only when its command runs, so heavy libraries (llama_cpp, rich, textual) load only
for the commands that need them."""

from __future__ import annotations

import importlib
import os
import sys

from reflectchat.cli.output import EXIT_PIPE_CLOSED
from reflectchat.cli.parser import build_parser

# command -> the module whose `run(args)` carries it out; no command opens the app
COMMANDS = {
    "ask": "reflectchat.cli.ask",
    "sessions": "reflectchat.cli.sessions",
    "pull": "reflectchat.cli.pull",
    "hw": "reflectchat.cli.hw",
    "doctor": "reflectchat.cli.doctor",
    "models": "reflectchat.cli.models",
    "web": "reflectchat.cli.web",
    "tune": "reflectchat.cli.tune",
    "eval": "reflectchat.cli.evaluate",
    None: "reflectchat.cli.chat",
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code = importlib.import_module(COMMANDS[args.command]).run(args)
        sys.stdout.flush()
    except BrokenPipeError:
        # the reader left (`| head`): end quietly, and keep Python's exit-time flush of the
        # closed pipe from printing a second error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_PIPE_CLOSED
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
