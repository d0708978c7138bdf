"""Speculative decoding in the app: chosen in F8 (a reload), shown live in the status bar."""

from __future__ import annotations

from support.app_pilot import ask, loaded, make_app, wait_for
from textual.widgets import Input, Label

from reflectchat.demo.scripted_model import Control, Piece, Script
from reflectchat.engine.base import TagFormat

WORDS = [Piece(f" w{i}") for i in range(80)]
RESTATED = Script("<|go|>", [Control("<think>"), *WORDS, Control("<|sep|>"), Piece(" so"),
                             Control("</think>"), Piece(" So:"), *WORDS, Control("<|sep|>"),
                             Piece(" Done.")])


async def test_f8_turns_n_grams_on_and_the_status_bar_shows_what_they_kept(make_model):
    app = make_app(make_model(RESTATED), tag_format=TagFormat.THINK)
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(pilot)
        assert app.host.engine.settings.speculation == "off"
        await pilot.press("f8")
        await pilot.pause()
        screen = app.screen
        field = screen.query_one("#field-speculation", Input)
        field.value = "a-model-nobody-has"
        await pilot.press("ctrl+s")
        await pilot.pause()
        said = str(screen.query_one("#settings-error", Label).render())
        assert "neither off, ngram, a GGUF file nor a catalog model" in said
        assert app.screen is screen  # nothing saved
        field.value = "NGram"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.host.engine is not None
                       and app.host.engine.settings.speculation == "ngram", what="the reload")
        assert app.host.runtime.speculation == "ngram"
        await ask(pilot, "Question?")
        stats = app.chat.conversation.turns[-1].stats
        assert stats is not None and stats.accepted and stats.accepted >= 60
        status = str(app.query_one("#status-text").render())
        assert f"spec {stats.accepted / stats.drafted:.0%}" in status
