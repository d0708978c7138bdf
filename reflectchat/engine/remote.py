"""A remote OpenAI-compatible server as a backend: `/v1/chat/completions` streamed as
server-sent events, behind the same interface as the in-process engine.

Reasoning that a server splits out (`reasoning_content`, `reasoning`, or `thinking` as LFM2.5's
servers send it) is wrapped in the tag format's thinking tags before it reaches the parser, so
it lands in the Thinking pane and any reflection tags inside it are still found; tags inside
`content` are parsed as for a local model. Every failure ends the answer with a clear message
in `stats.error` and keeps what arrived. Stop shuts the connection's socket down, so the server
sees the client leave and stops generating, even while it has sent nothing for a while.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx

from reflectchat.engine import sse_chunks
from reflectchat.engine.base import (
    DEFAULT_CTX,
    ChatMessage,
    FinishReason,
    FoundFormat,
    GenerationStats,
    Sampling,
    TagFormat,
)
from reflectchat.engine.endpoints import Endpoint
from reflectchat.engine.errors import EngineError
from reflectchat.engine.families import thinking_pair
from reflectchat.engine.loops import TextLoopWatch
from reflectchat.engine.sandbox import BoundError, SandboxError
from reflectchat.engine.server_template import (
    served_context,
    server_format,
    server_props,
    server_reader,
)
from reflectchat.engine.sse_chunks import Malformed
from reflectchat.engine.template_reading import TemplateReader, switched

CONNECT_TIMEOUT_S = 10.0
MODELS_TIMEOUT_S = 30.0  # for /v1/models, which answers at once
CHARS_PER_TOKEN = 3  # for estimating prompt size: errs towards trimming a little early
_FINISH = {"stop": FinishReason.STOP, "length": FinishReason.LENGTH,
           "eos": FinishReason.STOP, "tool_calls": FinishReason.STOP}


def _server_error(response: httpx.Response) -> str:
    """The server's own error text, from an OpenAI-style JSON body or plain text."""
    try:
        body = response.read().decode("utf-8", "replace").strip()
    except httpx.HTTPError:
        body = ""
    try:
        data = json.loads(body)
        error = data.get("error", data) if isinstance(data, dict) else data
        message = error.get("message") or error.get("detail") if isinstance(error, dict) else None
        body = str(message or error)
    except (json.JSONDecodeError, AttributeError):
        pass
    return f"HTTP {response.status_code} {response.reason_phrase}" + (f": {body[:500]}"
                                                                       if body else "")


def _network_error(exc: httpx.HTTPError, endpoint: Endpoint, waited: float) -> str:
    """One sentence for a failed request; `waited` is the read timeout it ran with."""
    if isinstance(exc, httpx.ConnectTimeout):
        return f"Could not connect to {endpoint.host} within {CONNECT_TIMEOUT_S:.0f} s"
    if isinstance(exc, httpx.ConnectError) and ("SSL" in str(exc) or "certificate" in str(exc)):
        return (f"The TLS handshake with {endpoint.host} failed: {exc} (a self-signed "
                "certificate needs verify_tls = false in the endpoint's table)")
    if isinstance(exc, httpx.ConnectError):
        return f"Cannot reach {endpoint.url}: {exc}. Is the server running?"
    if isinstance(exc, httpx.ReadTimeout):
        return (f"{endpoint.host} sent nothing for {waited:g} s; gave up waiting (--timeout "
                "or the endpoint's timeout allows longer, for slow prompts)")
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError):
        return f"The connection to {endpoint.host} dropped mid-answer ({exc})"
    return f"{endpoint.host}: {exc}"


def _client(endpoint: Endpoint, key: str | None, timeout: float,
            base_url: str | None = None) -> httpx.Client:
    """A client of the endpoint's API (`base_url`: another root on the same server)."""
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=base_url or endpoint.url, headers=headers,
                        verify=endpoint.verify_tls,
                        timeout=httpx.Timeout(timeout, connect=CONNECT_TIMEOUT_S))


def list_models(endpoint: Endpoint, key: str | None = None) -> list[dict[str, Any]]:
    """What the server offers (`GET /v1/models`); EngineError says why not."""
    try:
        with _client(endpoint, key or endpoint.api_key(), MODELS_TIMEOUT_S) as client:
            response = client.get("/models")
    except httpx.HTTPError as exc:
        raise EngineError(_network_error(exc, endpoint, MODELS_TIMEOUT_S)) from None
    if response.status_code != 200:
        raise EngineError(f"{endpoint.host} /v1/models: {_server_error(response)}")
    try:
        data = response.json()["data"]
        if not isinstance(data, list):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise EngineError(f"{endpoint.host} answered /v1/models with something that is not "
                          "an OpenAI-style model list") from None
    return data


class RemoteEngine:
    name = "remote"
    template = "server"  # the server applies its own
    load_note = None
    layer_count = 0  # the server does not say how it holds the model
    gpu_layers = 0

    def __init__(self, endpoint: Endpoint, model: str | None,
                 tag_format: TagFormat = TagFormat.AUTO) -> None:
        """Check the server is there and offers the model (the only one it offers, if
        `model` is None). Raises EngineError with what the server offers. `tag_format` picks
        the thinking tags that wrap reasoning the server sends apart; with `auto`, the format
        the server's template shows, where it shows one (server_template.py)."""
        self.endpoint = endpoint
        self.think_tags = thinking_pair(tag_format.name, tag_format.tags)
        self._key = endpoint.api_key()
        # the reasoning format the server's template shows (llama-server's /props), if any
        self.found_format: FoundFormat | None = None
        self._reader: TemplateReader | None = None
        self._switches: tuple[list[str], list[str]] | None = None
        offered = list_models(endpoint, self._key)
        ids = [m.get("id") for m in offered if isinstance(m, dict)]
        if model is None:
            if len(ids) != 1:
                raise EngineError(f"Name the model to use with --model: {endpoint.host} offers "
                                  f"{', '.join(map(str, ids)) or 'no models'}")
            model = str(ids[0])
        elif ids and model not in ids:
            raise EngineError(f"{endpoint.host} does not offer {model!r}; it offers "
                              f"{', '.join(map(str, ids))}")
        self.model = model
        entry = next((m for m in offered if isinstance(m, dict) and m.get("id") == model), {})
        stated = endpoint.context or _int(entry.get("max_model_len"))
        self._read_server(model, stated, tag_format == TagFormat.AUTO)

    def _read_server(self, model: str, stated: int | None, find_format: bool) -> None:
        """The context the server says it runs (unless the endpoint or the model list said),
        and the format its own template shows, where it shows it (with `find_format`)."""
        root = self.endpoint.url.rstrip("/").removesuffix("/v1")
        with _client(self.endpoint, self._key, MODELS_TIMEOUT_S, root) as client:
            props = server_props(client)
            stated = stated or served_context(client, props, model)
            reader = server_reader(client, props) if find_format else None
            found = server_format(reader) if reader is not None else None
        self.context_stated = stated is not None  # else n_ctx is a guess, for trimming only
        self._n_ctx = stated or DEFAULT_CTX
        if found is not None:
            self._reader, self.found_format = reader, found
            self.think_tags = thinking_pair(found.tag_format.name, found.tag_format.tags)

    def _client(self) -> httpx.Client:
        return _client(self.endpoint, self._key, self.endpoint.timeout)

    @property
    def n_ctx(self) -> int:
        return self._n_ctx

    def count_tokens(self, messages: list[ChatMessage]) -> int:
        """An estimate: the server's tokenizer is not at hand."""
        return sum(len(m.content) // CHARS_PER_TOKEN + 4 for m in messages)

    speed_source = None  # a server's speed says nothing of this machine

    def generate(self, messages: list[ChatMessage], sampling: Sampling,
                 cancel: threading.Event | None = None,
                 tag_format: TagFormat = TagFormat.AUTO) -> RemoteGeneration:
        """`tag_format` is not needed here: a server ends thinking itself, if it can."""
        generation = RemoteGeneration(self, messages, sampling, cancel or threading.Event(),
                                      self._switched(sampling.effort))
        generation.prefilled_thinking = self._prefilled(generation.sent_variables(), messages)
        return generation

    def _switched(self, effort: str | None) -> dict[str, Any]:
        """The server template's own effort and thinking switches (found by rendering, as for
        a GGUF: Kimi's `thinking`, GigaChat's `reasoning`) set for `effort`."""
        if effort is None or self._reader is None:
            return {}
        if self._switches is None:
            self._switches = ([], [])
            with contextlib.suppress(BoundError, SandboxError):
                self._switches = self._reader.switches()
        return switched(*self._switches, effort)

    def _prefilled(self, variables: dict[str, Any], messages: list[ChatMessage]) -> bool:
        """The server's template ends the prompt with the thinking opener (so the raw content
        starts inside the thinking)."""
        if self._reader is None or self.found_format is None:
            return False
        opener = self.think_tags[0].strip()
        try:
            prompt = self._reader.prompt([{"role": m.role, "content": m.content}
                                          for m in messages], **variables)
        except (BoundError, SandboxError):
            return False
        return bool(opener) and prompt.rstrip().endswith(opener)

    def close(self) -> None:
        """Nothing is held between answers: each one has its own connection."""


def _not_sent(sampling: Sampling) -> str | None:
    if sampling.thinking_budget is None:
        return None
    return ("the thinking budget applies to models run here; a server takes its own "
            "(llama-server --reasoning-budget)")


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 \
        else None


def request_body(model: str, messages: list[ChatMessage], sampling: Sampling) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": model, "stream": True, "stream_options": {"include_usage": True},
        "messages": [{"role": m.role, "content": m.content} for m in messages],
        "temperature": sampling.temperature, "top_p": sampling.top_p,
        # not in OpenAI's API, but read by llama-server, vLLM and LM Studio, ignored by others
        "top_k": sampling.top_k, "min_p": sampling.min_p,
    }
    if sampling.max_tokens is not None:  # else the server's own: the room in its context
        body["max_tokens"] = sampling.max_tokens
    if sampling.effort is not None:
        # OpenAI's field, read by vLLM, llama-server and LM Studio for gpt-oss; and the
        # template switches that llama-server and vLLM pass on to the chat template (Qwen3)
        if sampling.effort != "off":
            body["reasoning_effort"] = sampling.effort
        body["chat_template_kwargs"] = {"enable_thinking": sampling.effort != "off",
                                        **({"reasoning_effort": sampling.effort}
                                           if sampling.effort != "off" else {})}
    if sampling.seed is not None:
        body["seed"] = sampling.seed
    if sampling.repeat_penalty != 1.0:
        body["repeat_penalty"] = sampling.repeat_penalty
    return body


class RemoteGeneration:
    """One streamed answer: iterate for text pieces, then read `stats`."""

    def __init__(self, engine: RemoteEngine, messages: list[ChatMessage], sampling: Sampling,
                 cancel: threading.Event, switched: dict[str, Any] | None = None) -> None:
        """`switched`: template variables to send beside the usual ones (chat_template_kwargs)."""
        self._engine = engine
        self.prefilled_thinking = False  # the server's template opened the thinking
        self.special = None  # a server sends text: its special tokens are not told apart
        self._body = request_body(engine.model, messages, sampling)
        if switched:
            self._body["chat_template_kwargs"] = {**self._body.get("chat_template_kwargs", {}),
                                                  **switched}
        self._limit = sampling.max_tokens
        asked = next((m.content for m in reversed(messages) if m.role == "user"), "")
        self._loops = TextLoopWatch(asked=asked) if sampling.stop_loops else None
        self._cancel = cancel
        self.stats = GenerationStats(prompt_tokens=engine.count_tokens(messages),
                                     effort=sampling.effort,
                                     reasoning_note=_not_sent(sampling))
        self._socket: socket.socket | None = None
        self._done = threading.Event()

    def sent_variables(self) -> dict[str, Any]:
        """What the request asks the server's template to read besides the messages."""
        kwargs = self._body.get("chat_template_kwargs")
        return dict(kwargs) if isinstance(kwargs, dict) else {}

    def _trace(self, event: str, info: dict[str, Any]) -> None:
        """httpx reports the connection it opens; keep its socket for Stop."""
        if event == "connection.connect_tcp.complete":
            stream = info.get("return_value")
            self._socket = stream.get_extra_info("socket") if stream is not None else None

    def _watch_cancel(self) -> None:
        while not self._done.wait(0.05):
            if self._cancel.is_set():
                if self._socket is not None:
                    # wakes the blocked read at once; the server sees the client leave
                    with contextlib.suppress(OSError):
                        self._socket.shutdown(socket.SHUT_RDWR)
                return

    def __iter__(self) -> Iterator[str]:
        stats, endpoint = self.stats, self._engine.endpoint
        stats.finish_reason = FinishReason.ERROR
        start = time.perf_counter()
        first: float | None = None
        counted = 0
        in_reasoning = False
        ended = False  # [DONE] or a finish reason came: the server finished the answer
        usage: dict[str, Any] | None = None
        watcher = threading.Thread(target=self._watch_cancel, daemon=True)
        watcher.start()
        try:
            with self._engine._client() as client, client.stream(
                "POST", "/chat/completions", json=self._body,
                headers={"Accept": "text/event-stream"}, extensions={"trace": self._trace},
            ) as response:
                if response.status_code != 200:
                    stats.error = f"{endpoint.host}: {_server_error(response)}"
                    return
                if "text/event-stream" not in response.headers.get("content-type", ""):
                    raise Malformed(f"{endpoint.host}: the server did not send an event "
                                     "stream (content type "
                                     f"{response.headers.get('content-type', 'none')!r})")
                limit = self._limit
                for data in sse_chunks.event_data(response, endpoint):
                    if self._cancel.is_set():
                        break
                    if data.strip() == "[DONE]":
                        ended = True
                        break
                    delta = sse_chunks.delta(sse_chunks.chunk(data, endpoint), endpoint)
                    usage = delta.usage or usage
                    if ended:  # after the finish reason only usage counts
                        continue
                    for piece, is_reasoning in ((delta.reasoning, True), (delta.content, False)):
                        if not piece:
                            continue
                        if first is None:
                            first = time.perf_counter()
                        counted += 1
                        if is_reasoning != in_reasoning:
                            in_reasoning = is_reasoning
                            if not (is_reasoning and self.prefilled_thinking and counted == 1):
                                yield self._engine.think_tags[0 if is_reasoning else 1]
                        yield piece
                        if self._loops is not None and self._loops.feed_text(piece):
                            ended = True
                            stats.finish_reason = FinishReason.LOOP
                            break
                    if stats.finish_reason is FinishReason.LOOP:
                        break
                    if delta.finish_reason:
                        ended = True
                        stats.finish_reason = _FINISH.get(delta.finish_reason,
                                                          FinishReason.STOP)
                    elif limit is not None and counted >= limit:  # a server that ignores it
                        ended = True
                        stats.finish_reason = FinishReason.LENGTH
                        break
                if self._cancel.is_set():
                    stats.finish_reason = FinishReason.CANCELLED
                elif not ended:
                    stats.error = (f"The connection to {endpoint.host} closed before the answer "
                                   "finished")
                elif stats.finish_reason is FinishReason.ERROR:
                    stats.finish_reason = FinishReason.STOP  # [DONE] without a reason
        except (httpx.HTTPError, Malformed) as exc:
            if self._cancel.is_set():
                stats.finish_reason = FinishReason.CANCELLED
            else:
                stats.finish_reason = FinishReason.ERROR
                stats.error = str(exc) if isinstance(exc, Malformed) else \
                    _network_error(exc, endpoint, endpoint.timeout)
        finally:
            self._done.set()
            end = time.perf_counter()
            stats.total_s = end - start
            stats.completion_tokens = counted
            if usage:
                stats.prompt_tokens = _int(usage.get("prompt_tokens")) or stats.prompt_tokens
                stats.completion_tokens = _int(usage.get("completion_tokens")) or counted
            if first is not None:
                stats.time_to_first_token_s = first - start
                if counted > 1 and end > first:
                    stats.tokens_per_second = (counted - 1) / (end - first)
        if in_reasoning:  # the answer ended inside reasoning: close it as the server would
            yield self._engine.think_tags[1]
