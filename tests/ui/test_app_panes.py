"""The app against the real llama.cpp on generated GGUFs: panes fill, toggles, stop, regenerate,
turn selection, literal output, and the reflection links."""

from __future__ import annotations

import asyncio

import pytest
from support.app_pilot import STREAMING, ask, finished, loaded, make_app, wait_for
from textual.widgets import Markdown, Tabs
from textual.widgets.markdown import MarkdownBlock

from reflectchat.config import ConfigFile
from reflectchat.demo.long_answer import long_script
from reflectchat.demo.scripted_model import Control, Script
from reflectchat.engine.base import FinishReason, Sampling, TagFormat
from reflectchat.ui.widgets.channel_pane import ChannelPane
from reflectchat.ui.widgets.conversation_list import TurnItem
from reflectchat.ui.widgets.raw_view import RawView
from reflectchat.untrusted import visible


def pane_text(app, name: str) -> str:
    """What the pane shows, as the user reads it: the rendered text of its Markdown blocks."""
    blocks = app.query_one(f"#{name}", ChannelPane).document.query(MarkdownBlock)
    return "\n".join(str(block.render()) for block in blocks)


# endless answers stay endless: only Esc or the (large) context ends them
# an endless stream: a looping script that is not stopped as a loop
UNLIMITED = Sampling(temperature=0.0, max_tokens=1 << 20, stop_loops=False)


def pane_source(app, name: str) -> str:
    return app.query_one(f"#{name}", ChannelPane).document.source


async def test_a_demo_answer_fills_each_pane_and_the_conversation():
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(pilot)
        await ask(pilot, "Solve the equation 2x² + 5x − 3 = 0")
        assert "discriminant" in pane_text(app, "thinking")
        assert "↳ reflection 1" in pane_text(app, "thinking")
        assert "Reflection 1" in pane_text(app, "reflection")
        assert "sign error" in pane_text(app, "reflection")
        assert "x = 1/2" in pane_text(app, "output")
        assert "<thinking>" not in pane_text(app, "output")
        item = app.query_one(TurnItem)
        assert "Solve the equation" in item.query_one(".user-text", Markdown).source
        assert "two solutions" in item.query_one(".reply-text", Markdown).source
        status = str(app.query_one("#status-text").render())
        assert "│ CPU │" in status and "ctx " in status and "tok/s" in status
        assert "think " in status and "out " in status


async def test_pane_toggles_hide_panes_and_persist_across_restarts():
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(pilot)
        await pilot.press("f2")
        assert not app.query_one("#thinking").display
        await pilot.press("f3")
        assert not app.query_one("#reflection").display
        assert app.query_one("#output").display
    saved = ConfigFile().ui()
    assert not saved.show_thinking and not saved.show_reflection

    again = make_app()
    async with again.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        assert not again.query_one("#thinking").display
        await pilot.press("f2", "f4")  # thinking back, then output only
        assert again.query_one("#output").display
        assert not again.query_one("#thinking").display
        assert not again.query_one("#conversation").display
        await pilot.press("f4", "f5")  # raw view replaces the panes
        assert again.query_one("#raw").display and not again.query_one("#output").display
    assert ConfigFile().ui().raw_view


async def test_raw_view_shows_the_exact_model_text_with_tags():
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(pilot)
        await ask(pilot, "Solve 2x")
        await pilot.press("f5")
        await pilot.pause()
        raw = app.query_one(RawView).text
        model_text = app.chat.conversation.turns[-1].answer.raw
        assert raw == visible(model_text)  # the whole text, as the model wrote it
        assert model_text.startswith("<thinking>") and model_text.rstrip().endswith("</output>")
        assert model_text.count("<reflection>") == model_text.count("</reflection>") >= 1


async def test_escape_stops_mid_stream_and_keeps_the_partial_answer(make_model):
    script = long_script(steps=600)  # 11,000 tokens: at STREAMING's pace, far from its end
    app = make_app(make_model(script, cost=STREAMING), n_ctx=32768, sampling=UNLIMITED)
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(pilot)
        await ask(pilot, "go", wait=False)
        await wait_for(pilot, lambda: "Step 3:" in pane_source(app, "thinking"),
                       what="thinking text")
        await pilot.press("escape")
        await finished(pilot)
        turn = app.chat.conversation.turns[-1]
        assert turn.stopped
        assert turn.stats.completion_tokens < 6000  # the script is far longer
        assert "Step 3:" in turn.answer.thinking
        assert "Step 3:" in pane_source(app, "thinking")
        assert "stopped" in str(app.query_one(TurnItem).query_one(".reply-note").render())
        reply = app.query_one(TurnItem).query_one(".reply-text", Markdown).source
        assert reply.startswith("*thinking:* ") and "<thinking>" not in reply  # no raw tags


async def test_regenerate_replaces_the_last_answer():
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(pilot)
        await ask(pilot, "Solve 2x")
        first = app.chat.conversation.turns[-1]
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: app.chat.conversation.turns[-1] is not first, what="new turn")
        await finished(pilot)
        assert len(app.chat.conversation.turns) == 1
        assert len(app.query(TurnItem)) == 1
        assert app.chat.conversation.turns[-1].answer.output == first.answer.output


async def test_earlier_turns_can_be_selected_to_see_their_panes():
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(pilot)
        await ask(pilot, "Solve 2x")
        await ask(pilot, "Translate it's raining cats and dogs to French")
        assert "pleut" in pane_text(app, "output")
        await pilot.press("ctrl+up")
        await wait_for(pilot, lambda: "x = 1/2" in pane_text(app, "output"),
                       what="the first turn's output")
        await pilot.click(TurnItem, offset=(2, 0))  # the first item again: no change
        await pilot.press("ctrl+down")
        await wait_for(pilot, lambda: "pleut" in pane_text(app, "output"),
                       what="the second turn's output")


async def test_new_chat_empties_the_conversation():
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(pilot)
        await ask(pilot, "Solve 2x")
        await pilot.press("ctrl+n")
        await wait_for(pilot, lambda: "start with one of these" in pane_text(app, "output"),
                       what="the new chat")
        assert app.chat.conversation.turns == []
        assert not app.query(TurnItem)
        assert "start with one of these" in pane_text(app, "output")  # the demo's starters


UNTRUSTED = Script("<|go|>", [
    Control("<thinking>"), "\nThinking [bold]not bold[/bold] and [link=x]y[/link].\n",
    Control("</thinking>"), Control("<output>"),
    "\nColor \x1b[31mred\x1b[0m, bell \x07, carriage\rreturn, <b>html</b> and [red]markup[/red].\n",
    Control("</output>"),
])


async def test_model_text_is_shown_literally(make_model):
    app = make_app(make_model(UNTRUSTED))
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(pilot)
        await ask(pilot, "go")
        output = pane_text(app, "output")
        assert "␛[31mred␛[0m" in output
        assert "\x1b" not in output and "\x07" not in output and "\r" not in output
        assert "␇" in output and "carriage␍return" in output
        assert "<b>html</b>" in output  # not dropped as HTML
        assert "[red]markup[/red]" in output  # not Rich markup
        assert "[bold]not bold[/bold]" in pane_text(app, "thinking")
        await pilot.press("f5")
        await pilot.pause()
        raw = app.query_one(RawView).text
        assert "␛[31m" in raw and "\x1b" not in raw


async def test_a_reflection_marker_reveals_its_entry_and_back():
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(pilot)
        await pilot.press("f3")  # hide the reflection pane
        await ask(pilot, "Solve 2x")
        thinking = app.query_one("#thinking", ChannelPane).document
        thinking.post_message(Markdown.LinkClicked(thinking, "#reflection-1"))
        await wait_for(pilot, lambda: app.query_one("#reflection").display,
                       what="the reflection pane")  # revealed
        assert app.ui_config.show_reflection
        reflection = app.query_one("#reflection", ChannelPane).document
        reflection.post_message(Markdown.LinkClicked(reflection, "#thinking-1"))
        await wait_for(pilot, lambda: app.query_one("#thinking").display,
                       what="the thinking pane")


async def test_narrow_terminal_shows_one_column_under_tabs_without_overlap():
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        await ask(pilot, "Solve 2x")
        tabs = app.query_one(Tabs)
        assert tabs.display
        shown = [w for w in app.query(".pane, #conversation, #raw") if w.display]
        assert [w.id for w in shown] == ["output"]  # switched to the output as it arrived
        regions = [app.query_one(s).region for s in
                   ("#column-tabs", "#output", "#prompt", "StatusBar", "Footer")]
        for i, a in enumerate(regions):
            assert a.width > 0 and a.height > 0
            assert a.right <= 80 and a.bottom <= 24
            for b in regions[i + 1:]:
                assert not a.overlaps(b), (a, b)
        assert app.query_one("#prompt").region.height >= 3
        tabs.active = "tab-thinking"
        await pilot.pause()
        assert app.query_one("#thinking").display and not app.query_one("#output").display


async def test_a_pane_follows_the_stream_until_the_user_scrolls_up(make_model):
    app = make_app(make_model(long_script(steps=400)))
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(pilot)
        await ask(pilot, "go")
        for name in ("thinking", "output"):
            pane = app.query_one(f"#{name}", ChannelPane)
            assert pane.max_scroll_y > 0
            assert pane.scroll_y == pane.max_scroll_y, name  # the code block and table too
        pane = app.query_one("#thinking", ChannelPane)
        await ask(pilot, "go", wait=False)
        await wait_for(pilot, lambda: pane.max_scroll_y > 40, what="text to scroll")
        for _ in range(100):  # as a reader scrolls: until the pane has let go of its end (a
            # scroll made while the stream was redrawing it could land on the end again)
            pane.scroll_up(animate=False)
            pane.scroll_up(animate=False)
            await pilot.pause()
            if not pane.following and pane.scroll_y < pane.max_scroll_y:
                break
        held = pane.scroll_y
        await finished(pilot)
        assert pane.scroll_y == held < pane.max_scroll_y  # reading position kept
        assert pane.cue_shown and pane.border_subtitle == "↓ latest (End)"
        # in the bottom border: no line of text is under it
        assert pane.content_region.bottom <= pane.region.bottom - 1
        await pilot.click(pane, offset=(pane.outer_size.width // 2, pane.outer_size.height - 1))
        await wait_for(pilot, lambda: pane.scroll_y == pane.max_scroll_y and not pane.cue_shown,
                       what="the pane at its end, the cue gone")


async def test_resizing_the_terminal_switches_between_tabs_and_columns():
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        await ask(pilot, "Solve 2x")
        await pilot.resize_terminal(160, 48)
        await wait_for(pilot, lambda: not app.query_one(Tabs).display, what="the columns")
        assert all(app.query_one(f"#{c}").display for c in ("thinking", "reflection", "output"))
        await pilot.resize_terminal(80, 24)
        await wait_for(pilot, lambda: app.query_one(Tabs).display, what="the tabs")
        assert [w.id for w in app.query(".pane, #conversation, #raw") if w.display] == ["output"]


async def test_ctrl_q_quits_after_an_answer():
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        await ask(pilot, "Solve 2x")
        await asyncio.wait_for(pilot.press("ctrl+q"), 10)  # a hang fails, not stalls, the suite
        await wait_for(pilot, lambda: not app.is_running, timeout=10, what="the app to quit")
    assert app.host.engine is None  # closed before exiting


async def test_typing_while_streaming_holds_pane_updates_briefly_and_loses_none(make_model):
    endless = Script("<|go|>", [Control("<thinking>"), "Thinking it over. ",
                                Control("</thinking>"), Control("<output>"), "An answer. ",
                                Control("</output>")], loops=True)
    # A long context keeps the answer streaming while the test types, however slow the machine;
    # and should it fill the context first, the test still holds: it is about typing, not Stop.
    # (No reflection in the loop: hundreds of them made the end of the answer, not the typing,
    # most of the test's time.)
    app = make_app(make_model(endless, cost=STREAMING), n_ctx=32768, sampling=UNLIMITED)
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(pilot)
        await ask(pilot, "go", wait=False)
        turn = app.chat.conversation.turns[-1]
        held, typed = False, 0
        while typed < 10 or not held:  # type as the answer streams, until a batch waited
            assert typed < 1000, "no pane update ever waited for the typing"
            app.query_one("#prompt").insert("x")
            typed += 1
            await pilot.pause(0.02)
            held = held or app.chat.answer_view.waiting

        def every_fragment_shown() -> bool:  # the newest text too, a long pane's end
            if app.chat.answer_view.waiting:
                return False
            for c, text in app.chat.answer_view.shown_text(turn).items():
                pane = app.query_one(f"#{c.value}", ChannelPane)
                drawn = " ".join(pane.document.source.split())
                if pane.drawn != len(text) or not drawn.endswith(" ".join(text.split())[-60:]):
                    return False
            return True

        # typing paused: whatever waited is shown, and nothing was lost on the way
        await wait_for(pilot, every_fragment_shown, what="the held fragments to show")
        await pilot.press("escape")
        await finished(pilot)
        assert turn.stats is not None
        assert turn.stats.finish_reason in (FinishReason.CANCELLED, FinishReason.LENGTH)
        assert app.query_one("#prompt").text.count("x") == typed  # no keystroke lost


async def test_thinking_its_prompt_opened_moves_from_output_to_thinking_live(make_model):
    unopened = Script("<|go|>", ["Adding 2 and 3 ", "gives 5.\n", Control("</think>"),
                                 "\n\nThe sum is 5. "], loops=True)
    app = make_app(make_model(unopened, cost=STREAMING), tag_format=TagFormat.THINK, n_ctx=32768,
                   sampling=UNLIMITED)
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(pilot)
        await ask(pilot, "go", wait=False)
        await wait_for(pilot, lambda: "The sum is 5." in pane_source(app, "output"),
                       what="the answer after the closing tag")
        assert app.chat.live is not None  # still streaming: the move happened live
        assert pane_source(app, "thinking").startswith("Adding 2 and 3 gives 5.")
        assert not pane_source(app, "output").startswith("Adding")
        await pilot.press("escape")
        await finished(pilot)
        turn = app.chat.conversation.turns[-1]
        assert turn.prefilled and turn.answer.thinking == "Adding 2 and 3 gives 5."
        assert turn.answer.output.startswith("The sum is 5.")
        assert pane_source(app, "thinking") == "Adding 2 and 3 gives 5."


async def test_the_demos_empty_screen_offers_its_starters_and_a_number_sends_one():
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(pilot)
        hint = pane_source(app, "output")
        assert "demo model" in hint and "(#starter-2)" in hint and "type its number" in hint
        assert "Translate 'It's raining cats and dogs' to French" in hint
        await pilot.press("2", "enter")
        await finished(pilot)
        assert app.chat.conversation.turns[0].prompt.startswith("Translate 'It's raining")
        assert "Il pleut des cordes" in app.chat.conversation.turns[0].answer.output
        await ask(pilot, "1")  # after the first answer a number is just a prompt
        assert app.chat.conversation.turns[1].prompt == "1"


async def test_the_conversation_opens_at_its_end_and_follows_each_new_turn():
    from reflectchat.chat.conversation import Conversation, Turn
    from reflectchat.engine.base import GenerationStats
    from reflectchat.reflection.answer import Answer
    from reflectchat.ui.widgets.conversation_list import ConversationList

    turns = [Turn(f"Question {n}?", TagFormat.REFLECTION,
                  Answer.from_raw(f"<thinking>t</thinking><output>**Answer {n}**\n\n"
                                  "- one\n- two\n- three</output>", TagFormat.REFLECTION),
                  stats=GenerationStats()) for n in range(20)]
    app = make_app(conversation=Conversation("", Sampling(), turns))
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(pilot)
        listing = app.query_one(ConversationList)
        await wait_for(pilot, lambda: listing.max_scroll_y > 0
                       and listing.scroll_y == listing.max_scroll_y, what="the list at its end")
        assert listing.index == 19 and listing.max_scroll_y > 0
        assert listing.scroll_y == listing.max_scroll_y  # opened at the end, as --resume does
        first = listing.query(TurnItem).first()
        assert "**Answer 0**" in first.query_one(".reply-text", Markdown).source  # Markdown
        await ask(pilot, "Solve the equation: 2x^2 + 5x - 3 = 0")
        await wait_for(pilot, lambda: listing.index == 20
                       and listing.scroll_y == listing.max_scroll_y, what="the new turn in view")


async def test_nothing_is_cut_off_at_80_columns(make_model):
    from textual.widgets.markdown import MarkdownFence

    code = "x = " + " + ".join(str(n) for n in range(60))  # far wider than any pane
    script = Script("<|go|>", [Control("<output>"), "Code:\n\n```python\n", code, "\n```\n",
                               "Done.", Control("</output>")])
    app = make_app(make_model(script))
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        keys = [k for k in app.query("FooterKey") if k.display]
        shown = {k.key for k in keys}
        assert {"escape", "f1", "f2", "f3", "f4", "f5", "f6"} <= shown | {"escape"}
        assert all(k.region.width and k.region.right <= 80 for k in keys)  # none clipped
        await ask(pilot, "go")
        fence = app.query_one("#output").query_one(MarkdownFence)
        assert fence.max_scroll_x > 0 and fence.scrollbar_size_horizontal == 1  # scrolls, visibly
        await pilot.press("f5")
        await wait_for(pilot, lambda: any(code in r.text for r in app.query(RawView)
                                          if r.display), what="the raw view")
        raw = app.query_one(RawView)
        assert code in raw.text and raw.soft_wrap
        assert raw.virtual_size.width <= raw.scrollable_content_region.width  # wrapped, not cut


async def test_a_whole_answer_lists_its_corrections_and_what_each_changed():
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(pilot)
        await ask(pilot, "Solve the equation: 2x^2 + 5x - 3 = 0")
        await wait_for(pilot, lambda: "1 correction" in pane_text(app, "reflection"),
                       what="the corrections at a glance")
        shown = pane_text(app, "reflection")
        assert "First the discriminant" in shown.split("Reflection 1")[0]  # the header list
        source = pane_source(app, "reflection")
        assert "- **before:** “" in source and "- **after:** “" in source  # one under the other
        pane = app.query_one("#reflection", ChannelPane)
        assert pane.scroll_y == 0  # opened at the list's top, where the corrections are
        assert "“With the discriminant 49, its square root is 7:”" in source  # corrected
        assert "](#reflection-1)" in source  # the list item jumps to it


async def test_f9_frees_context_earlier_reasoning_first_then_the_oldest_turn():
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(pilot)
        app.chat.conversation.with_reasoning = True
        await ask(pilot, "Solve the equation: 2x^2 + 5x - 3 = 0")
        await ask(pilot, "Debug this Python code")
        assert app.chat.status.showing(app.chat.conversation, None).ctx_reasoning == \
            sum(t.answer.reasoning_tokens for t in app.chat.conversation.turns)
        before = app.host.engine.count_tokens(app.chat.conversation.messages_for(""))
        await pilot.press("f9")
        await pilot.pause()
        said = app.notices
        freed = [n.message for n in said if n.title == "Context freed"]
        assert freed and "the reasoning of 2 earlier answers" in freed[-1]
        assert not app.chat.conversation.with_reasoning
        after = app.host.engine.count_tokens(app.chat.conversation.messages_for(""))
        assert after < before and f"about {before - after:,} tokens freed" in freed[-1]
        assert app.chat.status.ctx_used == after and app.chat.status.ctx_reasoning is None
        await pilot.press("f9")
        await pilot.pause()
        freed = [n.message for n in app.notices if n.title == "Context freed"]
        assert "the oldest turn (“Solve the equation" in freed[-1]
        sent = app.chat.conversation.messages_for("next")
        assert [m.content for m in sent if m.role == "user"] == ["Debug this Python code",
                                                                 "next"]
        assert len(app.chat.conversation.turns) == 2  # still in the chat
        await pilot.press("f9", "f9")
        await pilot.pause()
        assert any("Nothing earlier is sent back" in n.message for n in app.notices)


@pytest.mark.parametrize("size", [(160, 48), (80, 24)])
async def test_ctrl_f_takes_the_keyboard_into_each_pane_in_view_in_turn(size):
    app = make_app()
    async with app.run_test(size=size) as pilot:
        await loaded(pilot)
        await ask(pilot, "Solve the equation: 2x^2 + 5x - 3 = 0")
        for column in ("thinking", "reflection", "output", "thinking"):
            await pilot.press("ctrl+f")
            await wait_for(pilot, lambda c=column: app.query_one(f"#{c}").has_focus,
                           what=f"the {column} pane's focus")
            if size[0] < 120:  # under tabs: the pane's tab came forward
                assert app.chat.columns.active == column
        await pilot.press("home")  # it moves in the pane, not in the prompt
        assert app.query_one("#thinking").scroll_y == 0
        assert any(key == "^f" for key, _ in app.key_help())
