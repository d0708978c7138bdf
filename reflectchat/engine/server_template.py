"""The reasoning format of a model a server runs, read from the template and tokenizer the
server shows: llama-server's `/props` (its `chat_template`, `bos_token`, `eos_token`) and
`/tokenize` (with `parse_special` on and off: a text is one special token when the two differ
and the first gives a single token). This is what lets raw content from a server be split as
a local file's would be, for families no pair of tags describes (Gemma 4's `<|channel>`, Kimi
K3's wrappers, Apriel's headings). A server without these routes (vLLM, Ollama, LM Studio) is
read as before: by the markers its text carries. The context a server runs is read from what
it says too (`served_context`), so a long chat is trimmed to the server's context, not a guess.

The template runs in the bounded template process (`sandbox.py`), as a GGUF's own does."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from functools import cache
from typing import Any
from urllib.parse import quote

import httpx

from reflectchat.engine.base import FoundFormat, TagFormat
from reflectchat.engine.sandbox import BoundError, SandboxError, bounded_template
from reflectchat.engine.template_reading import TemplateReader

MAX_TEMPLATE = 1024**2  # characters: real templates are a few thousand


def server_props(client: httpx.Client) -> dict[str, Any]:
    """llama-server's `/props` ({} from a server without it). `client`: one whose base URL is
    the server's root (not its /v1)."""
    props = _json(client, "GET", "/props")
    return props if isinstance(props, dict) else {}


def served_context(client: httpx.Client, props: dict[str, Any], model: str) -> int | None:
    """The context the server runs the model with, where it says: llama-server's `/props`
    (`n_ctx` of a slot), LM Studio's `/api/v0/models/ID` (`loaded_context_length`, else
    `max_context_length`), Ollama's `/api/show` (`num_ctx` among its parameters)."""
    settings = props.get("default_generation_settings")
    found = settings.get("n_ctx") if isinstance(settings, dict) else props.get("n_ctx")
    if _count(found):
        return found  # type: ignore[return-value]
    studio = _json(client, "GET", f"/api/v0/models/{quote(model, safe='')}")
    if isinstance(studio, dict):
        for key in ("loaded_context_length", "max_context_length"):
            if _count(studio.get(key)):
                return studio[key]  # type: ignore[no-any-return]
    shown = _json(client, "POST", "/api/show", {"model": model})
    parameters = shown.get("parameters") if isinstance(shown, dict) else None
    for line in parameters.splitlines() if isinstance(parameters, str) else []:
        name, _, value = line.partition(" ")
        if name == "num_ctx" and value.strip().isdigit() and _count(int(value.strip())):
            return int(value.strip())
    return None


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 1 << 31


def server_reader(client: httpx.Client, props: dict[str, Any]) -> TemplateReader | None:
    """The server's template with its tokenizer, or None where it shows neither."""
    source = props.get("chat_template")
    if not isinstance(source, str) or not source.strip() or len(source) > MAX_TEMPLATE:
        return None
    bos, eos = (props.get(k) if isinstance(props.get(k), str) else "" for k in
                ("bos_token", "eos_token"))
    if _tokens(client, "x", True) is None:  # no /tokenize: which texts are special is unknown
        return None

    @cache
    def is_special(text: str) -> bool:
        parsed = _tokens(client, text, True)
        return parsed is not None and len(parsed) == 1 and parsed != _tokens(client, text, False)

    def specials_in(text: str) -> list[str]:
        pieces = _json(client, "POST", "/tokenize",
                       {"content": text, "parse_special": True, "with_pieces": True})
        if not isinstance(pieces, dict) or not isinstance(pieces.get("tokens"), list):
            return []
        texts = [p.get("piece") for p in pieces["tokens"] if isinstance(p, dict)]
        return [t for t in texts if isinstance(t, str) and t and is_special(t)]

    return TemplateReader(source, bounded_template(source, bos, eos),
                          bounded_template(source, bos, eos, generation_prompt=False),
                          is_special, specials_in, frozenset({eos} - {""}))


def server_format(reader: TemplateReader) -> FoundFormat | None:
    """The format the server's template shows, or None where it names none (or fails)."""
    switches: Callable[[], list[str]] = lambda: _switches(reader)  # noqa: E731
    try:
        found = reader.found_format(switches)
    except (BoundError, SandboxError):
        return None
    if found.tag_format == TagFormat.AUTO:
        return None
    return FoundFormat(found.tag_format, found.why.replace("the template", "the server's template"))


def _switches(reader: TemplateReader) -> list[str]:
    with contextlib.suppress(BoundError, SandboxError):
        return reader.switches()[1]
    return []


def _tokens(client: httpx.Client, text: str, special: bool) -> list[int] | None:
    data = _json(client, "POST", "/tokenize", {"content": text, "parse_special": special})
    tokens = data.get("tokens") if isinstance(data, dict) else None
    if not isinstance(tokens, list) or not all(isinstance(t, int) for t in tokens):
        return None
    return tokens


def _json(client: httpx.Client, method: str, path: str, body: dict[str, Any] | None = None
          ) -> object:
    """The JSON a route answers, or None (absent, failing, not JSON, past 4 MiB)."""
    data = b""
    try:
        with client.stream(method, path, json=body) as response:
            if response.status_code != 200:
                return None
            for part in response.iter_bytes():
                data += part
                if len(data) > 4 * MAX_TEMPLATE:
                    return None
        return json.loads(data)
    except (httpx.HTTPError, ValueError, RecursionError):
        return None
