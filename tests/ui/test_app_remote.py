"""The app on a remote server (tests/support/fault_server.py on 127.0.0.1): the same panes, Esc
stops the server's stream, and a server error is shown with the partial answer kept."""

from __future__ import annotations

from pathlib import Path

from support.app_pilot import ask, finished, loaded, wait_for
from support.fault_server import FaultServer
from support.gguf_server import GGUFServer
from support.wrapped_families import (
    APRIEL,
    APRIEL_TEMPLATE,
    GEMMA,
    GEMMA_TEMPLATE,
    KIMI,
    KIMI_TEMPLATE,
)

from reflectchat.engine.base import Sampling, TagFormat
from reflectchat.engine.endpoints import Endpoint, api_base
from reflectchat.engine.remote import RemoteEngine
from reflectchat.models.choice import ModelChoice
from reflectchat.reflection.events import Channel
from reflectchat.ui.app import ReflectChatApp
from reflectchat.ui.widgets.status_bar import StatusBar


def remote_app(server: FaultServer | GGUFServer, model: str,
               tag_format: TagFormat = TagFormat.REFLECTION,
               sampling: Sampling | None = None) -> ReflectChatApp:
    endpoint = Endpoint(api_base(server.url), model=model)
    choice = ModelChoice(Path(), f"{model} @ {endpoint.host}", tag_format, "",
                         sampling or Sampling(), model_id=model, endpoint=endpoint)
    return ReflectChatApp(choice, lambda c, progress, runtime: RemoteEngine(
        c.endpoint, c.endpoint.model, c.tag_format))


async def test_split_out_reasoning_fills_the_panes():
    with FaultServer() as server:
        app = remote_app(server, "reasoning")
        async with app.run_test(size=(160, 40)) as pilot:
            await loaded(pilot)
            status = str(app.query_one(StatusBar).query_one("#status-text").render())
            assert "reasoning @ 127.0.0.1" in status and "GPU" not in status
            await ask(pilot, "What is 2 + 3?")
            panes = app.chat.answer_view.shown_text(app.chat.conversation.turns[-1])
            assert "The user wants a sum." in panes[Channel.THINKING]
            assert "Reflection 1" in panes[Channel.REFLECTION]
            answer = app.chat.conversation.turns[-1].answer
            assert answer.reflections == ["Wait, I added wrong."]
            assert answer.output == "The sum is 5."


async def test_escape_stops_a_silent_server_and_keeps_the_text():
    with FaultServer() as server:
        app = remote_app(server, "stall")
        async with app.run_test(size=(160, 40)) as pilot:
            await loaded(pilot)
            await ask(pilot, "Think hard", wait=False)
            turn = app.chat.conversation.turns[-1]
            await wait_for(pilot, lambda: turn.answer.raw, what="the first words")
            await pilot.press("escape")
            await finished(pilot)
            assert turn.stopped and turn.answer.output == "Thinking about it"
            await wait_for(pilot, lambda: server.disconnected, timeout=5,
                           what="the server to see the client leave")


async def test_a_server_error_is_shown():
    with FaultServer() as server:
        app = remote_app(server, "error500")
        async with app.run_test(size=(160, 40)) as pilot:
            await loaded(pilot)
            await ask(pilot, "Hello")
            errors = [n.message for n in app.notices if n.title == "Answer failed"]
            assert len(errors) == 1 and "CUDA out of memory" in errors[0]


async def test_a_malformed_chunk_keeps_the_app_and_the_partial_answer():
    """`delta` as a string gave a traceback that ended the app and saved the turn as
    "(interrupted)" without its text (saving is checked through `ask`, in test_remote)."""
    with FaultServer() as server:
        app = remote_app(server, "delta-str")
        async with app.run_test(size=(160, 40)) as pilot:
            await loaded(pilot)
            await ask(pilot, "Hello")
            turn = app.chat.conversation.turns[-1]
            assert turn.answer.raw == "Partial " and turn.answer.output == "Partial"
            errors = [n.message for n in app.notices if n.title == "Answer failed"]
            assert len(errors) == 1 and "malformed chunk" in errors[0]
            assert app.is_running


async def test_families_a_server_passes_raw_split_the_panes_by_its_template(make_model):
    """Kimi K3, Gemma 4 and Apriel from a llama-server that sends their raw content: the
    format comes from the template the server shows (/props, /tokenize)."""
    for scripts, template, effort, thinking, output in (
            (KIMI, KIMI_TEMPLATE, None, "Two and two: four.", "It is 4."),
            (GEMMA, GEMMA_TEMPLATE, "high", "The sky scatters blue light.",
             "Because of Rayleigh scattering."),
            (APRIEL, APRIEL_TEMPLATE, None, "3 apples and 2 apples.", "5 apples.")):
        with GGUFServer(make_model(scripts, template=template)) as server:
            app = remote_app(server, "model", TagFormat.AUTO,
                             Sampling(temperature=0.0, effort=effort))
            async with app.run_test(size=(160, 40)) as pilot:
                await loaded(pilot)
                status = str(app.query_one(StatusBar).query_one("#status-text").render())
                assert "server's template" in status
                await ask(pilot, "Why?")
                panes = app.chat.answer_view.shown_text(app.chat.conversation.turns[-1])
                assert (panes[Channel.THINKING], panes[Channel.OUTPUT]) == (thinking, output)
