"""`reflectchat web`: the same app in a browser, served by textual-serve (the `web` extra).

Each browser tab that connects starts its own `reflectchat` process with the model and answer
options given here, and sees exactly the terminal app. The server listens on the loopback
address by default: the app has no login, and whoever reaches it can chat with the model and
read the saved sessions. Another host is refused unless `--public` says so, with a warning.
Either way the page and its socket need the secret token in the printed URL, and only that
page's own origin may open the socket (`web_server.py`).
"""

from __future__ import annotations

import argparse
import ipaddress
import shlex
import sys

from reflectchat.cli.output import EXIT_OK, fail

SERVER_OPTIONS = {"host", "port", "public", "command", "help"}


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name other than localhost may resolve anywhere


def app_command(args: argparse.Namespace, parser: argparse.ArgumentParser) -> str:
    """The command each connection runs: this Python, the app, and the options given to
    `web` that are not the server's own."""
    argv = [sys.executable, "-m", "reflectchat"]
    for action in parser._actions:
        if action.dest in SERVER_OPTIONS or not action.option_strings:
            continue
        value = getattr(args, action.dest, None)
        if value is None or value is False or value == action.default:
            continue
        argv.append(action.option_strings[-1])
        if value is not True:
            argv.append(str(value))
    return shlex.join(argv)


def run(args: argparse.Namespace) -> int:
    if not is_loopback(args.host) and not args.public:
        return fail(f"Refusing to serve on {args.host}: the app has no login, so anyone who "
                    "can reach this address could use your model and read your sessions. "
                    "Add --public to serve there anyway.")
    try:
        from reflectchat.cli.web_server import GuardedServer
    except ImportError:
        return fail("reflectchat web needs textual-serve: pip install 'reflectchat[web]'")
    from reflectchat.cli.parser import web_parser

    if not is_loopback(args.host):
        print(f"Warning: serving on {args.host}:{args.port} beyond this machine, over plain "
              "http. Anyone who can reach it and has the URL's token can chat with your model "
              "and read your saved sessions.", file=sys.stderr)
    server = GuardedServer(app_command(args, web_parser()), host=args.host, port=args.port,
                           loopback=is_loopback(args.host))
    print(f"Serving reflectchat at {server.url} (Ctrl+C stops)", file=sys.stderr, flush=True)
    server.serve()
    return EXIT_OK
