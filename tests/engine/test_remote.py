"""The remote backend against real servers on 127.0.0.1: llama-cpp-python's OpenAI-compatible
server on a generated GGUF, and a fault server (tests/support/fault_server.py) for everything
else."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from support.fault_server import API_KEY, MALFORMED, FaultServer

from reflectchat.chat.answer_run import AnswerRun
from reflectchat.chat.conversation import Turn
from reflectchat.demo.scripted_model import Script, write_scripted_gguf
from reflectchat.engine.base import (
    ChatMessage,
    FinishReason,
    Sampling,
    TagFormat,
)
from reflectchat.engine.endpoints import Endpoint, api_base, endpoint_from_table, resolve_endpoint
from reflectchat.engine.errors import EngineError
from reflectchat.engine.remote import RemoteEngine
from reflectchat.paths import config_file, store_file
from reflectchat.reflection.answer import Answer
from reflectchat.reflection.events import EventKind
from reflectchat.reflection.stream import channel_events
from reflectchat.store.session_store import SessionStore

# Tags as plain text: llama-cpp-python's server renders CONTROL tokens as nothing.
ANSWER = Script("<|go|>", ["<thinking>Let me add them. ", "<reflection>Wait, 2 + 3 is 5, "
                           "not 6.</reflection>", " So 5.</thinking>",
                           "<output>2 + 3 = 5.</output>"])
QUESTION = [ChatMessage("user", "What is 2 + 3?")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`python -m llama_cpp.server` serving a scripted GGUF."""
    model = write_scripted_gguf(tmp_path_factory.mktemp("srv") / "adder.gguf", [ANSWER])
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host",
         "127.0.0.1", "--port", str(port), "--n_ctx", "1024", "--model_alias", "adder"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/v1/models", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            raise RuntimeError(f"llama_cpp.server did not start: {server.stderr.read()}")
        time.sleep(0.2)
    yield url
    server.terminate()
    server.wait(10)


@pytest.fixture
def faults() -> Iterator[FaultServer]:
    with FaultServer() as server:
        yield server


def answer_from(engine: RemoteEngine, model_format: TagFormat = TagFormat.AUTO,
                cancel: threading.Event | None = None, after_first=None):
    generation = engine.generate(QUESTION, Sampling(temperature=0.0), cancel)
    answer = Answer()
    for _ in channel_events(generation, model_format, answer):
        if after_first is not None:
            after_first()
            after_first = None
    return answer, generation.stats


def test_llama_cpp_server_streams_the_three_channels(llama_server):
    engine = RemoteEngine(Endpoint(api_base(llama_server)), "adder", TagFormat.REFLECTION)
    assert engine.model == "adder"
    answer, stats = answer_from(engine, TagFormat.REFLECTION)
    assert answer.thinking.strip() == "Let me add them.  So 5."
    assert answer.reflections == ["Wait, 2 + 3 is 5, not 6."]
    assert answer.output == "2 + 3 = 5."
    assert answer.raw == ANSWER.text
    assert stats.finish_reason is FinishReason.STOP and stats.error is None
    assert stats.completion_tokens > 3 and stats.time_to_first_token_s is not None


def test_ask_and_models_commands_use_the_server_and_save_the_session(llama_server):
    run = [sys.executable, "-m", "reflectchat"]
    listed = subprocess.run([*run, "models", "--endpoint", llama_server], capture_output=True,
                            text=True, timeout=60)
    assert listed.returncode == 0 and listed.stdout.split() == ["adder"]
    result = subprocess.run([*run, "ask", "--endpoint", llama_server, "--format", "reflection",
                             "--json", "What is 2 + 3?"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["output"] == "2 + 3 = 5." and data["reflections"] == ["Wait, 2 + 3 is 5, not 6."]
    info = SessionStore.open(store_file()).session(data["session"])
    assert info.meta.model == f"adder @ {llama_server.removeprefix('http://')}"


@pytest.mark.parametrize("mode", ["reasoning", "reasoning-field", "thinking-field"])
def test_split_out_reasoning_goes_to_thinking_with_its_reflections(faults, mode):
    engine = RemoteEngine(Endpoint(api_base(faults.url)), mode, TagFormat.REFLECTION)
    answer, stats = answer_from(engine, TagFormat.REFLECTION)
    assert answer.thinking.strip() == "The user wants a sum.  Fixed."
    assert answer.reflections == ["Wait, I added wrong."]
    assert answer.output == "The sum is 5."
    assert answer.raw.startswith("<thinking>The user wants") and "</thinking>The sum" in answer.raw
    assert (stats.prompt_tokens, stats.completion_tokens) == (11, 7)  # the server's usage
    assert stats.finish_reason is FinishReason.STOP
    sent = faults.requests[-1]["body"]
    assert sent["stream"] is True and sent["messages"] == [{"role": "user",
                                                            "content": "What is 2 + 3?"}]
    # no limit asked: the server's own (the room in its context), as reasoning models need
    assert sent["temperature"] == 0.0 and "max_tokens" not in sent


def test_split_out_reasoning_of_a_think_model(faults):
    """A DeepSeek-R1-style model: <think> tags, no reflection tags of its own."""
    engine = RemoteEngine(Endpoint(api_base(faults.url)), "reasoning", TagFormat.AUTO)
    answer, _ = answer_from(engine, TagFormat.AUTO)
    assert answer.raw.startswith("<think>The user wants") and "</think>The sum" in answer.raw
    assert answer.thinking.startswith("The user wants a sum.") and answer.output == "The sum is 5."


def test_tags_in_content_are_parsed_like_a_local_model(faults):
    engine = RemoteEngine(Endpoint(api_base(faults.url)), "tags")
    answer, stats = answer_from(engine)
    assert (answer.thinking, answer.output) == ("Plan it.", "Done \x1b[2J.")
    assert stats.finish_reason is FinishReason.LENGTH


def test_a_server_stream_that_closes_thinking_it_never_opened(faults):
    """The server's template opened <think> (no reasoning parser): the text before </think>
    is thinking, for the answer and for the turn that is stored."""
    engine = RemoteEngine(Endpoint(api_base(faults.url)), "unopened", TagFormat.THINK)
    turn = Turn("What is 2 + 3?", TagFormat.AUTO)
    answering = AnswerRun(engine, turn, QUESTION, Sampling(temperature=0.0), threading.Event())
    events = list(answering.events())
    assert [e.kind for e in events].count(EventKind.RECLASSIFY) == 1
    assert (turn.answer.thinking, turn.answer.output) == ("Let me add 2 and 3.", "The sum is 5.")
    assert (turn.prefilled, turn.tag_format) == (True, TagFormat.THINK)
    again = Answer.from_raw(turn.answer.raw, turn.tag_format, turn.prefilled)
    assert (again.thinking, again.output) == (turn.answer.thinking, turn.answer.output)


@pytest.mark.parametrize(("mode", "message", "partial"), [
    ("error500", "HTTP 500 Internal Server Error: CUDA out of memory while loading", ""),
    ("drop", "dropped mid-answer", "Hello wor"),
    ("garbage", "sent an event that is not JSON: '{this is not json'", "Partial "),
    ("html", "did not send an event stream", ""),
    ("auth", "HTTP 401 Unauthorized: invalid API key", ""),
])
def test_failures_say_what_happened_and_keep_the_partial_answer(faults, mode, message,
                                                                 partial):
    engine = RemoteEngine(Endpoint(api_base(faults.url)), mode)
    answer, stats = answer_from(engine)
    assert stats.finish_reason is FinishReason.ERROR
    assert stats.error and message in stats.error and "127.0.0.1" in stats.error
    assert answer.raw == partial


def test_silence_beyond_the_timeout_is_an_error(faults):
    engine = RemoteEngine(Endpoint(api_base(faults.url), timeout=0.5), "silent")
    started = time.monotonic()
    _, stats = answer_from(engine)
    assert time.monotonic() - started < 5
    assert stats.error and "sent nothing for 0.5 s" in stats.error


def test_an_endless_event_line_is_cut_off_not_buffered(faults):
    engine = RemoteEngine(Endpoint(api_base(faults.url)), "endless-line")
    answer, stats = answer_from(engine)
    assert stats.finish_reason is FinishReason.ERROR
    assert stats.error and "sent an event line longer than 8 MiB" in stats.error
    assert answer.raw == ""


def test_timeouts_and_tls_failures_are_named_as_they_are(faults):
    from reflectchat.engine.remote import _network_error

    endpoint = Endpoint(api_base(faults.url))
    said = _network_error(httpx.ReadTimeout("timed out"), endpoint, 30.0)
    assert "sent nothing for 30 s" in said
    tls = _network_error(httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate "
                                            "verify failed: self-signed certificate"),
                         endpoint, 180.0)
    assert "TLS handshake" in tls and "verify_tls = false" in tls
    assert "Is the server running?" not in tls
    waited = subprocess.run([sys.executable, "-m", "reflectchat", "ask", "--endpoint",
                             faults.url, "--model", "silent", "--timeout", "1", "--no-save",
                             "hi"], capture_output=True, text=True, timeout=60)
    assert waited.returncode == 1 and "sent nothing for 1 s" in waited.stderr


def test_stop_closes_the_connection_so_the_server_stops(faults):
    engine = RemoteEngine(Endpoint(api_base(faults.url)), "stall")
    cancel = threading.Event()
    stopped_at: list[float] = []

    def stop_soon() -> None:  # the server is now silent: Stop must not wait for it
        threading.Timer(0.3, lambda: (stopped_at.append(time.monotonic()), cancel.set())).start()

    answer, stats = answer_from(engine, cancel=cancel, after_first=stop_soon)
    assert stats.finish_reason is FinishReason.CANCELLED and stats.error is None
    assert answer.raw == "Thinking about it"
    deadline = time.monotonic() + 5
    while not faults.disconnected and time.monotonic() < deadline:
        time.sleep(0.02)
    assert faults.disconnected and faults.disconnected[0] - stopped_at[0] < 1.0


def test_the_api_key_comes_from_the_named_variable_and_is_never_saved(faults, monkeypatch):
    config = config_file()
    config.parent.mkdir(parents=True)
    config.write_text(f'[endpoints.lab]\nurl = "{faults.url}"\nmodel = "auth"\n'
                      'api_key_env = "LAB_KEY"\nformat = "think"\n')
    run = [sys.executable, "-m", "reflectchat", "ask", "--endpoint", "lab", "--json", "hi"]
    missing = subprocess.run(run, capture_output=True, text=True, timeout=60)
    assert missing.returncode == 1 and "LAB_KEY, which is not set" in missing.stderr
    monkeypatch.setenv("LAB_KEY", API_KEY)
    result = subprocess.run(run, capture_output=True, text=True, timeout=60,
                            env={**os.environ})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["output"] == "authorized"
    assert faults.requests[-1]["headers"]["Authorization"] == f"Bearer {API_KEY}"
    session = str(json.loads(result.stdout)["session"])
    exported = subprocess.run([sys.executable, "-m", "reflectchat", "sessions", "export",
                               session, "--format", "json"], capture_output=True, text=True)
    assert exported.returncode == 0 and API_KEY not in exported.stdout
    store = store_file()
    for path in store.parent.iterdir():
        assert API_KEY.encode() not in path.read_bytes(), path


def test_an_unreachable_server_and_unknown_models_are_clear(faults):
    nobody = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(EngineError, match=r"Cannot reach http://127\.0\.0\.1:.*server running"):
        RemoteEngine(Endpoint(api_base(nobody)), "x")
    with pytest.raises(EngineError, match="does not offer 'nope'; it offers reasoning, "):
        RemoteEngine(Endpoint(api_base(faults.url)), "nope")
    with pytest.raises(EngineError, match="Name the model to use with --model"):
        RemoteEngine(Endpoint(api_base(faults.url)), None)
    assert RemoteEngine(Endpoint(api_base(faults.url)), "long").n_ctx == 4096  # max_model_len
    assert RemoteEngine(Endpoint(api_base(faults.url), context=2048), "long").n_ctx == 2048


@pytest.mark.parametrize(("url", "message"), [
    ("ftp://host/v1", "http:// or https://"), ("file:///etc/passwd", "http:// or https://"),
    ("https://user:secret@host", "not in the endpoint URL"), ("http://", "has no host"),
])
def test_only_http_and_https_urls_without_credentials(url, message):
    with pytest.raises(EngineError, match=message):
        api_base(url)


def test_urls_and_config_tables():
    assert api_base("http://box:8080") == "http://box:8080/v1"
    assert api_base("https://box/openai/v1/") == "https://box/openai/v1"
    lab = endpoint_from_table("lab", {"url": "https://box", "context": 32768,
                                      "format": "reflection", "verify_tls": False})
    assert (lab.url, lab.context, lab.format, lab.verify_tls) == \
        ("https://box/v1", 32768, TagFormat.REFLECTION, False)
    with pytest.raises(EngineError, match=r"\[endpoints.lab\]: unknown key\(s\) api_key"):
        endpoint_from_table("lab", {"url": "https://box", "api_key": "sk-..."})
    with pytest.raises(EngineError, match="context has the wrong type"):
        endpoint_from_table("lab", {"url": "https://box", "context": "big"})
    for timeout in (float("nan"), float("inf"), -1, 0):  # config.toml's nan, inf and worse
        with pytest.raises(EngineError, match="timeout takes seconds between 0 and 86400"):
            endpoint_from_table("lab", {"url": "https://box", "timeout": timeout})
    with pytest.raises(EngineError, match="context takes a number of tokens"):
        endpoint_from_table("lab", {"url": "https://box", "context": -5})
    with pytest.raises(EngineError, match="neither a URL nor a configured endpoint"):
        resolve_endpoint("lab", {})
    assert resolve_endpoint("http://x", {}, "KEY_VAR").api_key_env == "KEY_VAR"


def test_sampling_goes_to_the_server(faults):
    engine = RemoteEngine(Endpoint(api_base(faults.url)), "long")
    list(engine.generate(QUESTION, Sampling(temperature=0.2, top_k=7, min_p=0.1, max_tokens=9,
                                            seed=3, repeat_penalty=1.1)))
    sent = faults.requests[-1]["body"]
    assert {k: sent[k] for k in ("temperature", "top_k", "min_p", "max_tokens", "seed",
                                 "repeat_penalty")} == {"temperature": 0.2, "top_k": 7,
                                                        "min_p": 0.1, "max_tokens": 9,
                                                        "seed": 3, "repeat_penalty": 1.1}



# A server is untrusted input: any shape of chunk ends the answer with one sentence and keeps
# what arrived; it never raises out of the generation (the app exited and lost the answer).

@pytest.mark.parametrize("mode", list(MALFORMED))
def test_a_malformed_chunk_ends_the_answer_and_keeps_what_arrived(faults, mode):
    engine = RemoteEngine(Endpoint(api_base(faults.url)), mode)
    answer, stats = answer_from(engine)
    assert stats.finish_reason is FinishReason.ERROR
    assert stats.error and "sent a malformed chunk" in stats.error
    assert "the answer stops here" in stats.error and "127.0.0.1" in stats.error
    assert answer.raw == "Partial "


def test_ask_saves_the_partial_answer_of_a_malformed_stream_without_a_traceback(faults):
    result = subprocess.run([sys.executable, "-m", "reflectchat", "ask", "--endpoint",
                             api_base(faults.url), "--model", "delta-str", "--json", "Hi"],
                            capture_output=True, text=True, timeout=60)
    assert "Traceback" not in result.stderr and result.returncode == 1
    data = json.loads(result.stdout)
    assert data["raw"] == "Partial " and data["finish_reason"] == "error"
    saved = SessionStore.open(store_file()).messages(data["session"])[-1]
    assert (saved.raw, saved.finish_reason) == ("Partial ", "error")


def test_an_event_of_many_data_lines_is_capped_like_one_line(faults):
    engine = RemoteEngine(Endpoint(api_base(faults.url)), "many-lines")
    answer, stats = answer_from(engine)
    assert stats.error and "sent an event longer than 8 MiB" in stats.error
    assert answer.raw == ""


def test_the_answer_limit_holds_when_the_server_ignores_max_tokens(faults):
    engine = RemoteEngine(Endpoint(api_base(faults.url)), "endless-deltas")
    generation = engine.generate(QUESTION, Sampling(max_tokens=50))
    text = "".join(generation)
    assert faults.requests[-1]["body"]["max_tokens"] == 50
    assert text == "word " * 50
    assert generation.stats.finish_reason is FinishReason.LENGTH


def test_text_after_the_finish_reason_and_other_choices_are_ignored(faults):
    engine = RemoteEngine(Endpoint(api_base(faults.url)), "after-finish")
    answer, stats = answer_from(engine)
    assert answer.raw == "The answer."
    assert stats.finish_reason is FinishReason.STOP and stats.completion_tokens == 2


def test_a_server_that_states_no_context_gets_no_context_percentage(faults):
    stated = RemoteEngine(Endpoint(api_base(faults.url)), "long")  # max_model_len 4096
    unstated = RemoteEngine(Endpoint(api_base(faults.url)), "tags")
    assert (stated.context_stated, stated.n_ctx) == (True, 4096)
    assert not unstated.context_stated
    assert RemoteEngine(Endpoint(api_base(faults.url), context=2048), "tags").context_stated


@pytest.mark.parametrize(("model", "thinking", "output"), [
    ("harmony", "Two and two.", "It is 4."), ("magistral", "Three sides.", "A triangle.")])
def test_raw_reasoning_markup_from_a_server_is_read_like_a_local_models(faults, model, thinking,
                                                                      output):
    engine = RemoteEngine(Endpoint(api_base(faults.url)), model)
    turn = Turn("q", TagFormat.AUTO)
    run = AnswerRun(engine, turn, QUESTION, Sampling(), threading.Event())
    list(run.events())
    assert (turn.answer.thinking, turn.answer.output) == (thinking, output)
    assert "<|" not in turn.answer.output and "THINK" not in turn.answer.output


def test_a_server_repeating_itself_is_left_as_a_loop(faults):
    engine = RemoteEngine(Endpoint(api_base(faults.url)), "repeating")
    generation = engine.generate(QUESTION, Sampling())
    text = "".join(generation)
    assert generation.stats.finish_reason is FinishReason.LOOP
    assert text.count("vuonna") < 60  # stopped soon after the loop was clear, not at 5,000


def test_effort_goes_to_the_server_and_a_budget_is_said_not_to(faults):
    engine = RemoteEngine(Endpoint(api_base(faults.url)), "tags")
    generation = engine.generate(QUESTION, Sampling(effort="low", thinking_budget=100))
    list(generation)
    sent = faults.requests[-1]["body"]
    assert sent["reasoning_effort"] == "low"
    assert sent["chat_template_kwargs"] == {"enable_thinking": True, "reasoning_effort": "low"}
    assert "budget" in (generation.stats.reasoning_note or "")
    list(engine.generate(QUESTION, Sampling(effort="off")))
    sent = faults.requests[-1]["body"]
    assert "reasoning_effort" not in sent
    assert sent["chat_template_kwargs"] == {"enable_thinking": False}
