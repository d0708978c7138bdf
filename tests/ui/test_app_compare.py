"""Two answers side by side (F10), through the app: two generated models that answer
differently (one local, one on a test server; or two local ones), the mark kept with the
session and the chat going on with the answer marked better; two models that do not fit
together take turns."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from support.app_pilot import STREAMING, ask, loaded, make_app, wait_for
from support.fault_server import FaultServer
from textual.widgets import Input, OptionList, Select

from reflectchat.chat.comparison import Comparison
from reflectchat.demo.scripted_model import Control, Script, write_scripted_gguf
from reflectchat.engine.base import Sampling
from reflectchat.engine.endpoints import api_base
from reflectchat.models.hardware import Hardware
from reflectchat.reflection.events import Channel
from reflectchat.store.compared import comparisons
from reflectchat.store.session_store import SessionStore
from reflectchat.store.turns import conversation_from
from reflectchat.ui.screens.compare_screen import CompareScreen
from reflectchat.ui.screens.compare_setup import CompareSetup

FOUR = Script("<|go|>", [Control("<thinking>"), "Two and two. ", Control("<reflection>"),
                         "Wait, check it. ", Control("</reflection>"), Control("</thinking>"),
                         Control("<output>"), "The answer is 4.", Control("</output>")])
FIVE = Script("<|go|>", [Control("<thinking>"), "Two and three. ", Control("</thinking>"),
                         Control("<output>"), "The answer is 5.", Control("</output>")])


def in_llama_cache(script: Script, name: str) -> Path:
    """A model where llama.cpp's `-hf` downloads go (F10 lists the GGUFs on this machine)."""
    folder = Path(os.environ["XDG_CACHE_HOME"]) / "llama.cpp"
    folder.mkdir(parents=True, exist_ok=True)
    return write_scripted_gguf(folder / name, [script])


async def _compare(pilot, prompt: str, pick: str | None = None, effort: str | None = None,
                   budget: str = "") -> CompareScreen:
    """Type `prompt`, press F10, pick side B (an option whose text holds `pick`, else the same
    model), set its effort and budget, and ask both."""
    app = pilot.app
    app.query_one("#prompt").focus()
    app.query_one("#prompt").insert(prompt)
    await pilot.press("f10")
    await wait_for(pilot, lambda: isinstance(app.screen, CompareSetup), what="the setup")
    setup = app.screen
    options = setup.query_one(OptionList)
    if pick is not None:
        await wait_for(pilot, lambda: any(pick in str(options.get_option_at_index(i).prompt)
                                          for i in range(options.option_count)),
                       what=f"{pick} in the list")
        options.highlighted = next(i for i in range(options.option_count)
                                   if pick in str(options.get_option_at_index(i).prompt))
    if effort is not None:
        setup.query_one("#compare-effort", Select).value = effort
    setup.query_one("#compare-budget", Input).value = budget
    await pilot.click("#compare-go")
    await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen), what="the comparison")
    return app.screen  # type: ignore[return-value]


async def _both_ended(pilot, screen: CompareScreen) -> None:
    await wait_for(pilot, lambda: len(screen.ended) == 2, timeout=60, what="both answers")
    await pilot.pause(0.1)


async def test_two_local_models_answer_side_by_side_and_the_chat_goes_on_with_b(
        make_model, tmp_path: Path):
    model_a = make_model(FOUR, name="four.gguf")
    in_llama_cache(FIVE, "five.gguf")
    store = SessionStore.open(tmp_path / "s.db")
    app = make_app(model_a, store=store)
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(pilot)
        await ask(pilot, "Warm up")
        screen = await _compare(pilot, "What is 2 + 2?", pick="five.gguf")
        await _both_ended(pilot, screen)
        a, b = screen.comparison.sides
        assert a.answer.output == "The answer is 4." and b.answer.output == "The answer is 5."
        assert a.answer.reflections == ["Wait, check it."] and b.answer.reflections == []
        assert "differ" in screen.outcome_text and "(A: 4 · B: 5)" in screen.outcome_text
        assert "5." in screen.outcome_text  # the diff shows B's words
        figures_a = screen.side("a").figures_text
        assert "1 reflection" in figures_a and "ended: stop" in figures_a
        assert "0 reflections" in screen.side("b").figures_text
        assert screen.notes[0].startswith("both fit in RAM at once")
        assert "B loads while A answers, and answers after it" in screen.notes[0]
        assert "five.gguf is loaded for answer B." in screen.notes
        # one after the other: B's first output came after A's answer ended
        assert b.answer.facts.start > a.answer.facts.start + a.stats.total_s
        await pilot.press("2")
        assert screen.comparison.choice == "b"
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, CompareScreen),
                       what="the chat")
        turns = app.chat.conversation.turns
        assert len(turns) == 2 and turns[-1] is b
        # the next prompt is sent with answer B as the reply before it
        messages = app.chat.conversation.messages_for("And then?")
        assert messages[-2].content == "The answer is 5."
        await wait_for(pilot, lambda: comparisons(store) and comparisons(store)[0].choice
                       == "b", what="the mark to be saved")
    session = store.sessions()[0]
    stored = conversation_from(session, store.messages(session.id))
    assert [t.answer.output for t in stored.turns][-1] == "The answer is 5."
    kept: Comparison = stored.turns[-1].comparison
    assert kept.setups[0].model == "test model" and kept.setups[1].model == "five.gguf"
    assert kept.sides[0].answer.output == "The answer is 4." and kept.choice == "b"
    hits = store.search("answer 4")
    assert any(h.channel == "output" for h in hits)  # the answer not chosen is found too
    store.close()


async def test_a_local_model_and_a_server_answer_at_once(make_model):
    with FaultServer() as server:
        config = Path(os.environ["XDG_CONFIG_HOME"]) / "reflectchat"
        config.mkdir(parents=True, exist_ok=True)
        (config / "config.toml").write_text(
            f'[endpoints.lab]\nurl = "{api_base(server.url)}"\nmodel = "reasoning"\n'
            'format = "reflection"\n', encoding="utf-8")
        app = make_app(make_model(FOUR, name="four.gguf"))
        app.comparing.host.make_engine = _with_servers(app.comparing.host.make_engine)
        async with app.run_test(size=(80, 24)) as pilot:
            await loaded(pilot)
            screen = await _compare(pilot, "What is 2 + 3?", pick="server lab")
            assert screen.notes[0] == "a server answers beside the local model, at the same time"
            await _both_ended(pilot, screen)
            a, b = screen.comparison.sides
            assert a.answer.output == "The answer is 4."
            assert b.answer.output == "The sum is 5."
            assert screen.narrow and screen.side("a").display != screen.side("b").display
            # a reasoning pane a line high opens at its start once the answer is whole
            thinking = screen.side("a").pane(Channel.THINKING)
            await wait_for(pilot, lambda: thinking.max_scroll_y > 0, what="a folded pane")
            assert thinking.scroll_y == 0
            await pilot.press("right")
            assert screen.active == "b" and screen.side("b").display
            assert app.focused is screen.side("b").pane(Channel.OUTPUT)
            await pilot.press("ctrl+f")
            assert app.focused is screen.side("b").pane(Channel.THINKING)
            await pilot.press("equals_sign")
            assert screen.comparison.choice == "tie"


def _with_servers(make_engine):
    """The app's engine factory, and a server's engine for a server's model (as the command
    line's is)."""
    from reflectchat.engine.remote import RemoteEngine

    def make(choice, progress, runtime):
        if choice.endpoint is not None:
            return RemoteEngine(choice.endpoint, choice.endpoint.model, choice.tag_format)
        return make_engine(choice, progress, runtime)

    return make


async def test_two_models_that_do_not_fit_together_take_turns(make_model, tmp_path: Path):
    model_a = make_model(FOUR, name="four.gguf")
    in_llama_cache(FIVE, "five.gguf")
    size = model_a.stat().st_size
    # a machine with room for one of them and its context, not both
    small = Hardware(cpu_threads=1, ram_total_bytes=0, ram_available_bytes=int(size * 1.6) +
                     (80 << 20))
    app = make_app(model_a, sampling=Sampling(temperature=0.0))
    app.comparing.hardware = lambda: small
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(pilot)
        screen = await _compare(pilot, "What is 2 + 2?", pick="five.gguf")
        await _both_ended(pilot, screen)
        assert screen.notes[0].startswith("both do not fit in RAM at once")
        assert "one after the other" in screen.notes[0]
        assert any("its model is unloaded to load five.gguf" in n for n in screen.notes)
        assert any(n.startswith("Loading five.gguf for answer B") for n in screen.notes)
        a, b = screen.comparison.sides
        assert a.answer.output == "The answer is 4." and b.answer.output == "The answer is 5."
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.host.engine is not None,
                       what="the chat's model to load again")
        assert app.host.choice.label == "test model"


ENDLESS = Script("<|go|>", [Control("<thinking>"), "Thinking it over. ", Control("</thinking>"),
                            Control("<output>"), "An answer. ", Control("</output>")],
                 loops=True)


async def test_esc_stops_both_answers_and_both_are_kept_stopped(make_model, tmp_path: Path):
    store = SessionStore.open(tmp_path / "s.db")
    app = make_app(make_model(ENDLESS, cost=STREAMING), n_ctx=32768, store=store,
                   sampling=Sampling(temperature=0.0, stop_loops=False))
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(pilot)
        screen = await _compare(pilot, "Go on", effort="low")  # the same model: in turn
        assert screen.notes[0].startswith("both answer on the model loaded, one after the other")
        a, b = screen.comparison.sides
        await wait_for(pilot, lambda: "An answer" in screen.side("a").text[Channel.OUTPUT],
                       what="answer A to stream")
        await pilot.press("escape")
        await _both_ended(pilot, screen)
        assert a.stopped and b.stopped and b.answer.raw == ""  # B never began
        assert screen.comparison.setups[1].effort == "low"
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, CompareScreen), what="the chat")
        assert app.chat.conversation.turns[-1] is a and not app.host.in_use
    found = comparisons(store)
    assert [(c.a.finish_reason, c.b.finish_reason) for c in found] == [("cancelled",
                                                                        "cancelled")]
    store.close()


async def test_quitting_during_a_comparison_stops_it(make_model):
    in_llama_cache(ENDLESS, "endless.gguf")
    app = make_app(make_model(ENDLESS, cost=STREAMING), n_ctx=32768,
                   sampling=Sampling(temperature=0.0, stop_loops=False))
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(pilot)
        screen = await _compare(pilot, "Go on", pick="endless.gguf")
        await wait_for(pilot, lambda: "An answer" in screen.side("a").text[Channel.OUTPUT]
                       and "endless.gguf is loaded for answer B." in screen.notes,
                       what="answer A to stream with B loaded beside it")
        await asyncio.wait_for(pilot.press("ctrl+q"), 10)  # a hang fails, not stalls, the suite
        await wait_for(pilot, lambda: not app.is_running, timeout=10, what="the app to quit")
    assert all(t.stopped for t in screen.comparison.sides)


async def test_the_setup_refuses_a_budget_out_of_range_and_a_side_b_like_a():
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        await pilot.press("f10")  # nothing typed, nothing compared yet: it says so
        assert "Type the prompt to compare first" in app.notices[-1].message
        app.query_one("#prompt").insert("Solve 2x")
        await pilot.press("f10")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareSetup), what="the setup")
        await pilot.click("#compare-go")
        assert "Side B is the same as A" in app.notices[-1].message
        budget = app.screen.query_one("#compare-budget", Input)
        budget.focus()
        for wrong in ("2000000", "9" * 5000, "²"):  # too many; past int()'s digits; not one
            budget.value = wrong
            await pilot.press("enter")
            assert "from 0 to 1,048,576" in app.notices[-1].message
            app.notices.clear()
        assert isinstance(app.screen, CompareSetup)
        await pilot.press("escape")
        assert not isinstance(app.screen, CompareSetup)
        assert app.chat.prompt.text == "Solve 2x"  # still there to ask


async def test_a_search_hit_in_the_answer_not_chosen_shows_both_answers():
    from support.compared import answer, keep_comparison

    from reflectchat.chat.comparison import Setup
    from reflectchat.paths import store_file
    from reflectchat.store.records import SearchHit
    from reflectchat.ui.widgets.entry_list import EntryList
    from reflectchat.ui.widgets.sessions_sidebar import SessionsSidebar

    store = SessionStore.open(store_file())
    keep_comparison(store, "Which planet is largest?",
                    (answer("Big ones.", "Jupiter"), answer("Ringed.", "Saturn")),
                    (Setup("one.gguf"), Setup("two.gguf")), "a")
    app = make_app(store=store)
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(pilot)
        await pilot.press("f6")
        app.query_one("#session-search", Input).value = "saturn"
        sidebar = app.query_one(SessionsSidebar)
        await wait_for(pilot, lambda: len(sidebar.entries) == 1
                       and isinstance(sidebar.entries[0], SearchHit), what="the hit")
        hits = app.query_one("#session-list", EntryList)
        hits.focus()
        hits.highlighted = 0
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen), what="both answers")
        a, b = app.screen.comparison.sides
        assert (a.answer.output, b.answer.output) == ("Jupiter", "Saturn")
        assert app.chat.conversation.turns[-1] is a  # the chat goes on with the one chosen
        await pilot.press("2")  # marked anew: the chat swaps to B
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.chat.conversation.turns[-1] is b, what="the swap")
        await wait_for(pilot, lambda: comparisons(store)[0].choice == "b", what="the mark")
    store.close()
