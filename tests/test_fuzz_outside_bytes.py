"""Outside bytes at every entry point that reads them: a server's event stream, a session
export, a GGUF header. Whatever comes, the entry point ends in its own error kind (which the
caller turns into one sentence) and holds bounded memory; nothing else escapes."""

from __future__ import annotations

import contextlib
import json

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st

from reflectchat.engine.endpoints import Endpoint
from reflectchat.engine.gguf_header import HeaderError, NeedMore, parse
from reflectchat.engine.sse_chunks import MAX_SSE_LINE, Malformed, chunk, delta, event_data
from reflectchat.paths import store_file
from reflectchat.store.session_store import SessionStore
from reflectchat.store.transfer import TransferError, import_session

ENDPOINT = Endpoint("http://127.0.0.1:9/v1")
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.sampled_from([10**400, -(10**30), 1e300])
    | st.floats(allow_nan=True)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=30)
SSE_PIECES = st.sampled_from(["data: ", "data:", "\n", "\r\n", "\r", "event: x\n", ": c\n",
                              "[DONE]", '{"choices": [', '{"delta": {"content": "a"}}', "]}",
                              '{"error": "e"}', "\x00", "\udcff", "é"])


@settings(max_examples=200, deadline=None)
@given(st.lists(SSE_PIECES | st.text(max_size=30), max_size=40).map("".join))
def test_any_event_stream_gives_events_or_a_malformed_error(text):
    response = httpx.Response(200, content=text.encode("utf-8", "surrogatepass"),
                              headers={"content-type": "text/event-stream"})
    received = response.content.decode("utf-8", "replace")  # as the stream reads the bytes
    lines = received.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    sent = {line[5:].removeprefix(" ") for line in lines if line.startswith("data:")}
    try:
        for data in event_data(response, ENDPOINT):
            assert set(data.split("\n")) <= sent  # only what data lines carried
            with contextlib.suppress(Malformed):
                delta(chunk(data, ENDPOINT), ENDPOINT)  # a delta, or one sentence
    except Malformed as exc:
        assert str(exc).startswith("127.0.0.1:9 ")


def test_an_endless_line_is_refused_at_its_cap():
    response = httpx.Response(200, content=b"data: " + b"x" * (MAX_SSE_LINE + 10),
                              headers={"content-type": "text/event-stream"})
    try:
        list(event_data(response, ENDPOINT))
    except Malformed as exc:
        assert "longer than 8 MiB" in str(exc)
    else:
        raise AssertionError("the endless line was accepted")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.sampled_from([b"", b"GGUF\x03\x00\x00\x00"]))
def test_any_header_bytes_give_a_header_or_a_header_error(data, prefix):
    blob = prefix + data
    with contextlib.suppress(HeaderError, NeedMore):
        parse(blob, len(blob))


@settings(max_examples=150, deadline=None)
@given(JSON, st.dictionaries(st.sampled_from(["title", "created", "updated", "model", "quant",
                                              "settings", "messages", "version"]), JSON,
                             max_size=8))
def test_any_json_import_is_stored_whole_or_refused_with_a_reason(value, fields):
    store = SessionStore.open(store_file())
    before = len(store.sessions())
    for data in (value, {"format": "reflectchat-session", "version": 1, **fields}):
        try:
            json.dumps(data, allow_nan=True)
            import_session(store, data)
        except TransferError as exc:
            assert str(exc)  # a sentence the command prints
            assert len(store.sessions()) == before  # all or nothing
    store.close()


VALID = {
    "format": "reflectchat-session", "version": 1, "title": "t", "created": 1.7e9,
    "updated": 1.7e9, "model": "demo", "quant": None,
    "settings": {"system_prompt": "", "sampling": {"temperature": 0.7, "top_k": 40, "seed": None},
                 "gpu_layers": 0, "n_ctx": 4096},
    "messages": [
        {"role": "user", "raw": "q", "thinking": "", "reflections": [], "output": "",
         "tag_format": None, "prefilled": False, "finish_reason": None, "stats": None,
         "created": 1.7e9},
        {"role": "assistant", "raw": "a", "thinking": "t", "reflections": ["r"], "output": "o",
         "tag_format": "reflection", "prefilled": False, "finish_reason": "stop",
         "stats": {"completion_tokens": 3, "tokens_per_second": 9.5}, "created": 1.7e9},
    ],
}
LEAVES = [("title",), ("created",), ("updated",), ("model",), ("quant",),
          ("settings", "system_prompt"), ("settings", "gpu_layers"), ("settings", "n_ctx"),
          ("settings", "sampling", "temperature"), ("settings", "sampling", "top_k"),
          ("settings", "sampling", "seed"), ("messages", 1, "raw"), ("messages", 1, "output"),
          ("messages", 1, "reflections"), ("messages", 1, "stats"), ("messages", 1, "created"),
          ("messages", 1, "stats", "tokens_per_second"), ("messages", 0, "role"),
          ("messages", 1, "prefilled"), ("messages", 1, "tag_format")]


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(LEAVES), JSON)
def test_a_valid_export_with_any_one_value_changed_is_stored_or_refused(path, value):
    data = json.loads(json.dumps(VALID))
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    store = SessionStore.open(store_file())
    before = len(store.sessions())
    try:
        session_id = import_session(store, data)
    except TransferError:
        assert len(store.sessions()) == before
    else:
        store.messages(session_id)  # what was stored reads back
        assert session_id in {s.id for s in store.sessions()}
    store.close()


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.binary(max_size=200), JSON.map(lambda v: json.dumps(v).encode())),
       st.sampled_from([400, 401, 429, 500, 503]))
def test_any_error_body_from_a_server_or_hub_becomes_a_bounded_sentence(body, status):
    from reflectchat.engine.remote import _server_error

    said = _server_error(httpx.Response(status, content=body))
    assert said.startswith(f"HTTP {status}") and len(said) < 600
