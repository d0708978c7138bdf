"""The event stream of an OpenAI-style `/chat/completions` answer, checked: each event's data
bounded in size, each chunk a JSON object whose fields have the types they should. A chunk of
another shape ends the answer with one sentence (`Malformed`), never a crash that loses what
arrived."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from reflectchat.engine.endpoints import Endpoint

MAX_SSE_LINE = 8 * 1024**2  # one streamed chunk is a few hundred bytes
REASONING_FIELDS = ("reasoning_content", "reasoning", "thinking")  # as servers name it


def event_data(response: httpx.Response, endpoint: Endpoint) -> Iterator[str]:
    """The data of each server-sent event. Neither a line nor an event's data (its `data:`
    lines together) is ever longer than `MAX_SSE_LINE`: a server that sends one without end is
    an error, not a buffer that grows until memory is gone."""
    buffer, data, size = "", [], 0
    for text in response.iter_text():
        buffer += text
        *lines, buffer = buffer.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        if len(buffer) > MAX_SSE_LINE:
            raise Malformed(f"{endpoint.host} sent an event line longer than "
                             f"{MAX_SSE_LINE // 1024**2} MiB; gave up on the answer")
        for line in lines:
            if not line:  # a blank line ends an event
                if data:
                    yield "\n".join(data)
                data, size = [], 0
            elif line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
                size += len(data[-1]) + 1
                if size > MAX_SSE_LINE:
                    raise Malformed(f"{endpoint.host} sent an event longer than "
                                     f"{MAX_SSE_LINE // 1024**2} MiB; gave up on the answer")
    if data:
        yield "\n".join(data)


class Malformed(Exception):
    pass


@dataclass(frozen=True)
class Delta:
    """What one streamed chunk adds to the answer (choice 0 only: we ask for one)."""

    reasoning: str | None = None
    content: str | None = None
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None


def delta(chunk: dict[str, Any], endpoint: Endpoint) -> Delta:
    """The chunk's delta with every field's type checked."""
    def wrong(field: str, value: object) -> Malformed:
        return Malformed(f"{endpoint.host} sent a malformed chunk ({field} is "
                          f"{type(value).__name__}: {str(value)[:100]!r}); the answer stops here")

    if "error" in chunk:
        error = chunk["error"]
        text = error.get("message", error) if isinstance(error, dict) else error
        raise Malformed(f"{endpoint.host} reported an error mid-answer: {str(text)[:500]}")
    usage = chunk.get("usage")
    if usage is not None and not isinstance(usage, dict):
        raise wrong("usage", usage)
    choices = chunk.get("choices")
    if choices is None:
        return Delta(usage=usage)
    if not isinstance(choices, list):
        raise wrong("choices", choices)
    for choice in choices:
        if not isinstance(choice, dict):
            raise wrong("a choice", choice)
        if choice.get("index", 0) != 0:
            continue  # another completion than the one we asked for
        found = choice.get("delta")
        if found is None:
            found = {}
        if not isinstance(found, dict):
            raise wrong("delta", found)
        reasoning = next((found[k] for k in REASONING_FIELDS if found.get(k) is not None), None)
        fields = {"reasoning": reasoning,
                  "content": found.get("content"), "finish_reason": choice.get("finish_reason")}
        for name, value in fields.items():
            if value is not None and not isinstance(value, str):
                raise wrong(name, value)
        return Delta(**fields, usage=usage)  # type: ignore[arg-type]
    return Delta(usage=usage)



def chunk(data: str, endpoint: Endpoint) -> dict[str, Any]:
    try:
        parsed = json.loads(data)
    except json.JSONDecodeError:
        raise Malformed(f"{endpoint.host} sent an event that is not JSON: {data[:200]!r}") \
            from None
    if not isinstance(parsed, dict):
        raise Malformed(f"{endpoint.host} sent an event that is not a JSON object: "
                        f"{data[:200]!r}")
    return parsed
