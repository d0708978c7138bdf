"""The app on a real model (Gemma 3 270M, Q4_K_M, via the session's `real_model`): it loads,
says which chat template it chose, answers up to the limit, and Esc stops it."""

from __future__ import annotations

from support.app_pilot import ask, finished, loaded, make_app, wait_for

from reflectchat.engine.base import FinishReason, Sampling, TagFormat
from reflectchat.ui.widgets.status_bar import StatusBar


async def test_a_real_model_answers_in_the_app_and_stops_on_escape(real_model):
    app = make_app(real_model, tag_format=TagFormat.AUTO, n_ctx=2048,
                   sampling=Sampling(temperature=0.0, max_tokens=16))
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(pilot)
        status = str(app.query_one(StatusBar).query_one("#status-text").render())
        assert "gemma template" in status
        assert any("no chat template; using gemma" in n.message for n in app.notices)
        await ask(pilot, "Write a sentence about the sea.")
        turn = app.chat.conversation.turns[-1]
        assert turn.stats.finish_reason in (FinishReason.STOP, FinishReason.LENGTH)
        assert 0 < turn.stats.completion_tokens <= 16 and turn.answer.output.strip()
        app.chat.conversation.sampling = Sampling(max_tokens=2000, seed=3)
        await ask(pilot, "Tell a long story about a lighthouse.", wait=False)
        await wait_for(pilot, lambda: len(app.chat.conversation.turns[-1].answer.raw) > 20,
                       timeout=60, what="the story to start")
        await pilot.press("escape")
        await finished(pilot)
        story = app.chat.conversation.turns[-1]
        assert story.stopped and story.stats.completion_tokens < 2000
