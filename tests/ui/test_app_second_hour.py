"""What a user meets after the first ten minutes (issue 26): a model without reasoning tags, a
model that did not load, the settings form, search by keyboard, the finished Reflection pane."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support.app_pilot import STREAMING, ask, finished, loaded, make_app, wait_for
from textual.widgets import Input, Label

from reflectchat.demo.scripted_model import Control, Piece, Script
from reflectchat.engine.base import Sampling, TagFormat
from reflectchat.ui.widgets.channel_pane import ChannelPane
from reflectchat.ui.widgets.status_bar import StatusBar


def status_text(app) -> str:
    return str(app.query_one(StatusBar).query_one("#status-text").render())


async def test_a_model_without_reasoning_tags_is_answering_not_thinking(make_model):
    plain = Script("<|go|>", [Piece(f"Sentence {i}. ") for i in range(30)], loops=True)
    app = make_app(make_model(plain, cost=STREAMING), tag_format=TagFormat.AUTO, n_ctx=32768,
                   sampling=Sampling(temperature=0.0, max_tokens=1 << 20, stop_loops=False))
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(pilot)
        await ask(pilot, "go", wait=False)
        turn = app.chat.conversation.turns[-1]
        item = app.chat.turn_list.item_for(turn)

        def note() -> str:
            return str(item.query_one(".reply-note").render())

        await wait_for(pilot, lambda: note() == "answering…", what="the note to say answering")
        assert turn.stats is None  # while it streams
        await pilot.press("escape")
        await finished(pilot)
        shown = status_text(app)
        assert "out " in shown and "think " not in shown  # no channel facts it does not use


async def test_a_model_that_did_not_load_says_so_and_how_to_pick_one(tmp_path: Path):
    app = make_app(tmp_path / "gone.gguf", tag_format=TagFormat.AUTO)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_for(pilot, lambda: any("not found" in n.message for n in app.notices),
                       what="the load to fail")
        app.query_one("#prompt").insert("hello")
        await pilot.press("enter")
        await pilot.pause()
        said = app.notices[-1].message
        assert said.startswith("No model is loaded") and "Ctrl+L" in said


@pytest.mark.parametrize("size", [(160, 48), (80, 24)])
async def test_a_bad_setting_is_shown_at_its_field_which_gets_the_focus(size):
    app = make_app()
    async with app.run_test(size=size) as pilot:
        await loaded(pilot)
        await pilot.press("f8")
        await wait_for(pilot, lambda: app.screen.id == "settings", what="the settings")
        screen = app.screen
        assert app.focused is screen.query_one("#system-prompt")  # typing goes somewhere
        field = screen.query_one("#field-gpu_layers", Input)
        field.value = "-5"
        await pilot.press("ctrl+s")
        await pilot.pause()
        under = screen.query_one("#error-gpu_layers", Label)
        assert "GPU layers must be between -1" in str(under.render()) and under.display
        assert app.focused is field
        body = screen.query_one("#settings-body")
        # the field and its message are in the dialog's visible part, not scrolled away
        assert body.region.contains_region(field.region) and \
            body.region.contains_region(under.region)


async def test_the_finished_reflection_pane_opens_at_its_corrections_when_narrow():
    app = make_app()
    async with app.run_test(size=(80, 18)) as pilot:  # a short tab: the pane must scroll
        await loaded(pilot)
        await ask(pilot, "Solve the equation: 2x^2 + 5x - 3 = 0")
        pane = app.query_one("#reflection", ChannelPane)
        await wait_for(pilot, lambda: "1 correction" in pane.document.source, what="the list")
        app.chat.columns.bring("reflection")
        await wait_for(pilot, lambda: pane.max_scroll_y > 0, what="the tab laid out")
        await pilot.pause()  # anything the layout set off, such as a scroll, done
        assert pane.max_scroll_y > 0  # taller than the tab: where it opens matters
        assert pane.scroll_y == 0


async def test_an_answer_stopped_before_its_output_says_so(make_model):
    thinking = Script("<|go|>", [Control("<think>"), *(Piece(f"step {i}. ") for i in range(30)),
                                 Control("</think>")], loops=True)
    app = make_app(make_model(thinking, cost=STREAMING), tag_format=TagFormat.THINK,
                   n_ctx=32768,
                   sampling=Sampling(temperature=0.0, max_tokens=1 << 20, stop_loops=False))
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(pilot)
        await ask(pilot, "go", wait=False)
        await wait_for(pilot, lambda: "step 3." in app.chat.conversation.turns[-1].answer.thinking,
                       what="thinking to stream")
        await pilot.press("escape")
        await finished(pilot)
        assert not app.chat.conversation.turns[-1].answer.output  # stopped inside its thinking
        assert app.query_one("#output", ChannelPane).document.source == \
            "*stopped before answering*"


async def test_toasts_and_the_footer_leave_the_status_bar_and_their_keys_whole(make_model):
    from textual.widgets import Footer

    endless = Script("<|go|>", [Piece(f"Sentence {i}. ") for i in range(30)], loops=True)
    app = make_app(make_model(endless, cost=STREAMING), n_ctx=32768,
                   sampling=Sampling(temperature=0.0, max_tokens=1 << 20, stop_loops=False))
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        await loaded(pilot)
        app.notify("A message that must not cover the status bar.", timeout=30)
        await wait_for(pilot, lambda: app.screen.query("Toast"), what="the toast")
        await pilot.pause()
        toasts = list(app.screen.query("Toast"))
        bar = app.query_one(StatusBar).region
        assert toasts and not any(t.region.overlaps(bar) for t in toasts)
        footer = app.query_one(Footer)
        assert not footer.show_command_palette  # its room goes to the keys at 80 columns
        await ask(pilot, "go", wait=False)
        await wait_for(pilot, lambda: any(k.key == "escape" and k.region.width
                                          for k in footer.query("FooterKey") if k.display),
                       what='"esc Stop" laid out among the keys, as it streams')
        keys = [k for k in footer.query("FooterKey") if k.display]
        assert keys and max(k.region.right for k in keys) <= 80
        assert all(k.region.width >= len(str(k.render()).strip()) for k in keys)
        await pilot.press("escape")
        await finished(pilot)
        await pilot.resize_terminal(160, 48)
        await pilot.pause()
        assert footer.show_command_palette


async def test_every_bad_setting_is_shown_at_once_and_too_many_threads_are_warned_of():
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        await pilot.press("f8")
        await wait_for(pilot, lambda: app.screen.id == "settings", what="the settings")
        screen = app.screen
        for field, value in [("temperature", "hot"), ("effort", "lots"), ("n_ctx", "12")]:
            screen.query_one(f"#field-{field}", Input).value = value
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.screen is screen  # nothing saved
        for field, said in [("temperature", "'hot' is not a number"),
                            ("effort", "Reasoning effort is one of"),
                            ("n_ctx", "Context tokens must be between 256")]:
            under = screen.query_one(f"#error-{field}", Label)
            assert said in str(under.render()) and under.display, field
        assert app.focused is screen.query_one("#field-temperature", Input)  # the first
        for field, value in [("temperature", "0.5"), ("effort", ""), ("n_ctx", ""),
                             ("n_threads", str((os.cpu_count() or 1) + 97))]:
            screen.query_one(f"#field-{field}", Input).value = value
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: app.screen is not screen, what="the settings to close")
        assert any("CPU threads on a machine with" in n.message for n in app.notices)
