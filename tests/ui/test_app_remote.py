"""The app on a remote server (tests/support/fault_server.py on 127.0.0.1): the same panes, Esc
stops the server's stream, and a server error is shown with the partial answer kept."""

from __future__ import annotations

from pathlib import Path

from support.app_pilot import ask, finished, loaded, wait_for
from support.fault_server import FaultServer

from reflectchat.engine.base import Sampling, TagFormat
from reflectchat.engine.endpoints import Endpoint, api_base
from reflectchat.engine.remote import RemoteEngine
from reflectchat.models.choice import ModelChoice
from reflectchat.reflection.events import Channel
from reflectchat.ui.app import ReflectChatApp
from reflectchat.ui.widgets.status_bar import StatusBar


def remote_app(server: FaultServer, model: str) -> ReflectChatApp:
    endpoint = Endpoint(api_base(server.url), model=model)
    choice = ModelChoice(Path(), f"{model} @ {endpoint.host}", TagFormat.REFLECTION, "",
                         Sampling(), model_id=model, endpoint=endpoint)
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
            panes = app.answer_view.shown_text(app.conversation.turns[-1])
            assert "The user wants a sum." in panes[Channel.THINKING]
            assert "Reflection 1" in panes[Channel.REFLECTION]
            answer = app.conversation.turns[-1].answer
            assert answer.reflections == ["Wait, I added wrong."]
            assert answer.output == "The sum is 5."


async def test_escape_stops_a_silent_server_and_keeps_the_text():
    with FaultServer() as server:
        app = remote_app(server, "stall")
        async with app.run_test(size=(160, 40)) as pilot:
            await loaded(pilot)
            await ask(pilot, "Think hard", wait=False)
            turn = app.conversation.turns[-1]
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
            turn = app.conversation.turns[-1]
            assert turn.answer.raw == "Partial " and turn.answer.output == "Partial"
            errors = [n.message for n in app.notices if n.title == "Answer failed"]
            assert len(errors) == 1 and "malformed chunk" in errors[0]
            assert app.is_running
