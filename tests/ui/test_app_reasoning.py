"""Reasoning families in the app: the format found from the model file shows in the status bar
and splits the panes; a model repeating itself is stopped and says so; effort and budget are
set in F8 and shown."""

from __future__ import annotations

from support.app_pilot import ask, loaded, make_app, wait_for
from support.harmony_model import HARMONY, HARMONY_LOW, HARMONY_REST, HARMONY_TEMPLATE
from support.wrapped_families import (
    APRIEL,
    APRIEL_TEMPLATE,
    GEMMA,
    GEMMA_TEMPLATE,
    KIMI,
    KIMI_TEMPLATE,
)
from textual.widgets import Checkbox, Input

from reflectchat.demo.scripted_model import Control, Script
from reflectchat.engine.base import FinishReason, Sampling, TagFormat
from reflectchat.ui.widgets.channel_pane import ChannelPane
from reflectchat.ui.widgets.status_bar import StatusBar


def pane(app, name: str) -> str:
    return app.query_one(f"#{name}", ChannelPane).document.source


def status_text(app) -> str:
    return str(app.query_one(StatusBar).query_one("#status-text").render())


async def test_gpt_oss_in_the_app_thinking_and_answer_panes_and_its_format_named(make_model):
    model = make_model([HARMONY, HARMONY_LOW, *HARMONY_REST], template=HARMONY_TEMPLATE)
    app = make_app(model, tag_format=TagFormat.AUTO)
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(pilot)
        assert "reasoning: harmony, from the template" in status_text(app)
        await ask(pilot, "What is 2+2?")
        assert pane(app, "thinking") == "The user asks for 2+2. That is 4."
        assert pane(app, "output") == "2 + 2 = 4."
        assert app.chat.conversation.turns[-1].tag_format == TagFormat("harmony")


async def test_a_looping_answer_is_stopped_and_the_app_says_why(make_model):
    looping = Script("<|go|>", [Control("<think>"), "Let me think. ", Control("</think>"),
                                "Paris is the capital of France, "], loops=True)
    app = make_app(make_model(looping), tag_format=TagFormat.THINK, n_ctx=8192,
                   sampling=Sampling(temperature=0.0))
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(pilot)
        await ask(pilot, "Capital of France?")
        turn = app.chat.conversation.turns[-1]
        assert turn.stats.finish_reason is FinishReason.LOOP and turn.stopped
        assert turn.stats.completion_tokens < 300
        assert any("repeating itself" in n.message for n in app.notices)
        item = app.chat.turn_list.item_for(turn)
        assert "stopped: the model was repeating itself" in str(item.query_one(".reply-note")
                                                                 .render())


async def test_f7_steps_through_the_efforts_and_the_status_bar_says_it():
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(pilot)
        seen = []
        for _ in range(5):  # the prompt has the focus: F7 is the app's, not its select-all
            await pilot.press("f7")
            await pilot.pause()
            seen.append(app.chat.conversation.sampling.effort)
        assert seen == ["off", "low", "medium", "high", None]
        await pilot.press("f7")
        await pilot.pause()
        assert "effort off" in status_text(app)


async def test_effort_and_budget_are_set_in_f8_and_kept_for_the_next_answer():
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(pilot)
        await pilot.press("f8")
        await wait_for(pilot, lambda: app.screen.id == "settings", what="the settings")
        app.screen.query_one("#field-effort", Input).value = "low"
        app.screen.query_one("#field-thinking_budget", Input).value = "500"
        app.screen.query_one("#stop-loops", Checkbox).value = False
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.screen.id != "settings", what="the form to close")
        sampling = app.chat.conversation.sampling
        assert (sampling.effort, sampling.thinking_budget, sampling.stop_loops) == \
            ("low", 500, False)
        assert "effort low · budget 500" in status_text(app)
        await pilot.press("f8")
        await wait_for(pilot, lambda: app.screen.id == "settings", what="the settings")
        app.screen.query_one("#field-effort", Input).value = "lots"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "Reasoning effort is one of off, low, medium, high" in str(
            app.screen.query_one("#settings-error").render())


async def test_kimi_k3s_wrappers_found_from_its_template_split_the_panes(make_model):
    app = make_app(make_model(KIMI, template=KIMI_TEMPLATE), tag_format=TagFormat.AUTO)
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(pilot)
        assert "from the template's renders" in status_text(app)
        await ask(pilot, "What is 2+2?")
        assert pane(app, "thinking") == "Two and two: four."
        assert pane(app, "output") == "It is 4."  # no <|close|>response<|sep|> after it
        stored = app.chat.conversation.turns[-1].tag_format
        assert stored.answer == ("<|open|>response<|sep|>", "<|close|>")


async def test_gemma_4_and_apriel_found_from_their_templates_split_the_panes(make_model):
    """Gemma 4 thinks when its template's `enable_thinking` is on (effort high in F8's
    settings, here from the start); Apriel's template pre-fills its text opener."""
    for scripts, template, effort, thinking, output in (
            (GEMMA, GEMMA_TEMPLATE, "high", "The sky scatters blue light.",
             "Because of Rayleigh scattering."),
            (APRIEL, APRIEL_TEMPLATE, None, "3 apples and 2 apples.", "5 apples.")):
        app = make_app(make_model(scripts, template=template), tag_format=TagFormat.AUTO,
                       sampling=Sampling(temperature=0.0, effort=effort))
        async with app.run_test(size=(160, 48)) as pilot:
            await loaded(pilot)
            assert "from the template's renders" in status_text(app)
            await ask(pilot, "Why is the sky blue?")
            assert (pane(app, "thinking"), pane(app, "output")) == (thinking, output)
