"""`reflectchat sessions list|show|search|export|import|delete|stats|contexts`."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import PurePath
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from reflectchat.chat.comparison import mark_sentence
from reflectchat.chat.conversation import Turn
from reflectchat.chat.transcript import finish_note, reasoning_asked
from reflectchat.cli.console import CommandConsole
from reflectchat.cli.output import EXIT_OK, fail
from reflectchat.eval.compared import pair_marks
from reflectchat.reflection.facts import facts_text
from reflectchat.sizes import size_text
from reflectchat.store.compared import comparisons
from reflectchat.store.records import MARK_END, MARK_START, SearchHit, SessionMeta
from reflectchat.store.session_store import SessionStore, StoreError
from reflectchat.store.transfer import (
    TransferError,
    import_session,
    model_label,
    session_json,
    session_markdown,
)
from reflectchat.store.turns import conversation_from
from reflectchat.untrusted import visible

MAX_IMPORT_BYTES = 256 << 20  # far above any real chat's export


def run(args: argparse.Namespace) -> int:
    # markup off: titles, paths and queries are outside text, never rich markup
    out = CommandConsole(highlight=False, soft_wrap=True, markup=False)
    err = CommandConsole(stderr=True, highlight=False, soft_wrap=True, markup=False)
    try:
        store = SessionStore.open()
    except StoreError as exc:
        return fail(exc)
    if store.notice:
        err.print(Text(f"reflectchat: {store.notice}", style="yellow"))
    try:
        return ACTIONS[args.action](store, args, out, err)
    except BrokenPipeError:
        raise  # the reader left: cli/main.py ends quietly
    except (StoreError, TransferError, OSError) as exc:
        return fail(exc)
    finally:
        store.close()


MODEL_CHARS = 32  # the model column's width at most


def short_model(meta: SessionMeta) -> str:
    """The model as the list shows it: a GGUF's file name, not its folder, cut in the middle
    when long (the quant and shard at the end tell files apart as much as the start)."""
    model = meta.model
    if "/" in model or model.endswith(".gguf"):
        model = PurePath(model).name
    name = " ".join(x for x in (model, meta.quant) if x) or "unknown model"
    if len(name) <= MODEL_CHARS:
        return name
    half = (MODEL_CHARS - 1) // 2
    return name[:half] + "…" + name[len(name) - (MODEL_CHARS - 1 - half):]


def _when(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(timestamp))


def _list(store: SessionStore, args: argparse.Namespace, out: Console, err: Console) -> int:
    sessions = store.sessions(args.limit)
    if args.json:
        print(json.dumps([{"id": s.id, "title": s.title, "created": s.created,
                           "updated": s.updated, "model": s.meta.model, "quant": s.meta.quant,
                           "messages": s.messages} for s in sessions], ensure_ascii=False,
                         indent=2))
        return EXIT_OK
    if not sessions:
        err.print("No sessions yet: chat in the app, or run `reflectchat ask`.")
        return EXIT_OK
    models = [visible(short_model(s.meta)) for s in sessions]
    table = Table(box=None, header_style="bold")
    ids = max(len(str(s.id)) for s in sessions)
    # the title takes what the other columns leave, one line each: a long title no_wrap made
    # wider than the terminal had Rich shrink every column alike, and the ids vanished
    widths = [max(ids, 2), 16, 8, max(5, *map(len, models))]
    for name, width in zip(("id", "updated", "messages", "model"), widths, strict=True):
        table.add_column(name, no_wrap=True, min_width=width)
    title_room = out.width - sum(widths) - 2 * (len(widths) + 1)
    table.add_column("title", no_wrap=True, overflow="ellipsis", max_width=max(8, title_room))
    for s, model in zip(sessions, models, strict=True):
        table.add_row(str(s.id), _when(s.updated), str(s.messages), Text(model),
                      Text(visible(s.title)))
    out.print(table, soft_wrap=False)  # within the terminal's width
    return EXIT_OK


def _show(store: SessionStore, args: argparse.Namespace, out: Console, err: Console) -> int:
    info, messages = store.session(args.id), store.messages(args.id)
    if args.json:
        print(json.dumps(session_json(info, messages), ensure_ascii=False, indent=2))
        return EXIT_OK
    out.print(Text(visible(info.title), style="bold"))
    out.print(Text(f"{model_label(info.meta)} · started {_when(info.created)}", style="dim"))
    for n, turn in enumerate(conversation_from(info, messages).turns, 1):
        out.print(Text(f"\n── {n}. you ──", style="bold cyan"))
        out.print(Text(visible(turn.prompt.strip())))
        compared = turn.comparison
        if compared is None:
            _print_answer(out, turn)
            continue
        for side, (answer, setup) in zip("ab", zip(compared.sides, compared.setups,
                                                    strict=True), strict=True):
            out.print(Text(f"── answer {side.upper()}: {visible(setup.label)} ──",
                           style="bold magenta"))
            _print_answer(out, answer)
        out.print(Text(f"({mark_sentence(compared)})", style="magenta"))
    for message in messages:
        if message.damaged:
            err.print(Text(f"Message {message.seq} could not be read in full (damaged: "
                           f"{', '.join(message.damaged)}); the rest is shown.", style="yellow"))
    return EXIT_OK


def _print_answer(out: Console, turn: Turn) -> None:
    answer = turn.answer
    sections = [("thinking", answer.thinking, "bold"),
                *((f"reflection {i}", r, "bold yellow")
                  for i, r in enumerate(answer.reflections, 1)),
                ("output", answer.output, "bold")]
    for label, text, style in sections:
        if text.strip():
            out.print(Text(f"── {label} ──", style=style))
            out.print(Text(visible(text.strip())))
    spec = turn.stats.speculation_text() if turn.stats else None
    if spec and turn.stats:
        spec += f" ({turn.stats.accepted:,}/{turn.stats.drafted:,} drafted)"
    facts = " · ".join(t for t in (facts_text(answer.facts), reasoning_asked(turn.stats),
                                   spec) if t)
    if facts:
        out.print(Text(facts, style="dim"))
    note = finish_note(turn.stats)
    if note:
        out.print(Text(f"({visible(note)})", style="yellow"))


def _stats(store: SessionStore, args: argparse.Namespace, out: CommandConsole,
           err: CommandConsole) -> int:
    """Per pair of setups compared side by side, which one the user's marks preferred."""
    found = comparisons(store)
    marks = [(c.a.setup.label, c.b.setup.label, c.choice) for c in found if c.choice]
    pairs = pair_marks(marks)
    if args.json:
        print(json.dumps({"comparisons": len(found), "marked": len(marks), "pairs": [
            {"first": p.first, "second": p.second, "first_preferred": p.first_wins,
             "second_preferred": p.second_wins, "ties": p.ties,
             "first_share": None if p.share() is None else vars(p.share())}
            for p in pairs]}, ensure_ascii=False, indent=2))
        return EXIT_OK
    if not found:
        err.print("No compared answers yet: F10 in the app asks one prompt of two setups side "
                  "by side, and 1, 2 or = marks the better one.")
        return EXIT_OK
    out.print(f"{len(found)} comparison{'s' * (len(found) != 1)}, {len(marks)} marked "
              "(ties are left out of each share).")
    for pair in pairs:
        out.print(Text(visible(pair.sentence())))
    return EXIT_OK


def _highlighted(snippet: str) -> tuple[str, list[list[int]]]:
    """The snippet without marks, and the [start, end) of each match in it."""
    plain, spans = "", []
    for i, part in enumerate(snippet.replace(MARK_END, MARK_START).split(MARK_START)):
        if i % 2:
            spans.append([len(plain), len(plain) + len(part)])
        plain += part
    return plain.replace("\n", " "), spans


def _hit_label(hit: SearchHit) -> str:
    return f"reflection {hit.reflection}" if hit.channel == "reflection" else hit.channel


def _search(store: SessionStore, args: argparse.Namespace, out: Console, err: Console) -> int:
    if not args.query.strip() and not args.corrected:
        return fail("Give words to search for, or --corrected to list the answers where the "
                    "model corrected itself.")
    hits = store.search(args.query, args.channel or (), args.limit, corrected=args.corrected)
    if args.json:
        rows: list[dict[str, Any]] = []
        for hit in hits:
            snippet, spans = _highlighted(hit.snippet)
            rows.append({"session": hit.session_id, "title": hit.title, "prompt": hit.prompt,
                         "message": hit.seq,
                         "channel": hit.channel, "reflection": hit.reflection or None,
                         "snippet": snippet, "highlights": spans})
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return EXIT_OK
    if not hits:
        what = f" {visible(repr(args.query))}" if args.query.strip() else ""
        err.print(f"Nothing matches{what}{' among corrected answers' * args.corrected}.")
        return EXIT_OK
    for hit in hits:
        snippet, spans = _highlighted(hit.snippet)
        line = Text(f"{hit.session_id:>5}  ", style="bold")
        line.append(Text(visible(hit.label), style="cyan"))
        line.append(f"  · {_hit_label(hit)}", style="yellow" if hit.reflection else "dim")
        out.print(line)
        text = Text("       " + snippet)
        for start, end in spans:
            text.stylize("bold reverse", start + 7, end + 7)
        out.print(text)
    return EXIT_OK


def _export(store: SessionStore, args: argparse.Namespace, out: Console, err: Console) -> int:
    info, messages = store.session(args.id), store.messages(args.id)
    if args.format == "json":
        text = json.dumps(session_json(info, messages), ensure_ascii=False, indent=2) + "\n"
    else:
        text = session_markdown(info, messages)
    if args.output is None:  # a file keeps the text exact; a terminal must not act on it
        sys.stdout.write(visible(text) if sys.stdout.isatty() else text)
    else:
        args.output.write_text(text, encoding="utf-8")
        err.print(f"Wrote session {info.id} to {visible(str(args.output))}")
    return EXIT_OK


def _import(store: SessionStore, args: argparse.Namespace, out: Console, err: Console) -> int:
    if args.file.stat().st_size > MAX_IMPORT_BYTES:
        raise TransferError(f"{args.file} is {size_text(args.file.stat().st_size)}; a session "
                            f"export of more than {size_text(MAX_IMPORT_BYTES)} is not imported")
    try:
        data = json.loads(args.file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TransferError(f"{args.file} is not JSON: {exc}") from None
    except RecursionError:
        raise TransferError(f"{args.file} nests its JSON too deeply to be a session export") \
            from None
    try:
        session_id = import_session(store, data)
    except TransferError as exc:
        raise TransferError(f"{args.file}: {exc}") from None
    if args.json:
        print(json.dumps({"id": session_id}))
    else:
        err.print(f"Imported as session {session_id}")
    return EXIT_OK


def _delete(store: SessionStore, args: argparse.Namespace, out: Console, err: Console) -> int:
    info = store.session(args.id)
    if not args.yes:
        if not sys.stdin.isatty():
            return fail("add --yes to delete without a terminal to confirm in")
        answer = input(f"Delete session {info.id} {visible(info.title)!r} "
                       f"({info.messages} messages)? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            err.print("Kept.")
            return EXIT_OK
    store.delete(info.id)
    err.print(f"Deleted session {info.id}")
    return EXIT_OK


def _contexts(store: SessionStore, args: argparse.Namespace, out: CommandConsole,
              err: CommandConsole) -> int:
    """The saved contexts' count and space (against `[contexts] budget`), or --clear them."""
    from reflectchat.config import ConfigFile
    from reflectchat.engine.saved_context import saved

    files = saved()
    used = sum(p.stat().st_size for p in files)
    if args.clear:
        for path in files:
            path.unlink(missing_ok=True)
        err.print(f"Deleted {len(files)} saved context{'' if len(files) == 1 else 's'} "
                  f"({size_text(used)})")
        return EXIT_OK
    budget = ConfigFile().context_budget()
    folder = files[0].parent if files else None
    noun = "saved context" if len(files) == 1 else "saved contexts"
    out.print(f"{len(files)} {noun}, {size_text(used)} of a {size_text(budget)} budget "
              "([contexts] budget in config.toml)" + (f" in {folder}" if folder else ""))
    return EXIT_OK


ACTIONS = {"list": _list, "show": _show, "search": _search, "export": _export,
           "import": _import, "delete": _delete, "contexts": _contexts, "stats": _stats}
