"""The app's widgets, each alone in a small host app, with no model: the answer view takes a
streaming answer's messages and draws them (holding them while the user types), the columns
lay themselves out by their reactives, the status bar draws what is assigned to it."""

from __future__ import annotations

from support.app_pilot import wait_for
from textual.app import App, ComposeResult
from textual.widgets import ProgressBar, Tabs

from reflectchat.chat.conversation import Turn
from reflectchat.config import UIConfig
from reflectchat.engine.base import FinishReason, GenerationStats, TagFormat
from reflectchat.reflection.answer import Answer
from reflectchat.reflection.corrections import corrections_of
from reflectchat.reflection.events import Channel, EventKind
from reflectchat.reflection.facts import ChannelFacts
from reflectchat.reflection.parser import ReflectionParser
from reflectchat.ui.messages import StreamBatch, StreamFinished
from reflectchat.ui.pane_text import PaneGrowth, panes
from reflectchat.ui.widgets.answer_view import AnswerView
from reflectchat.ui.widgets.columns import Columns, visible_columns
from reflectchat.ui.widgets.raw_view import RawView
from reflectchat.ui.widgets.status_bar import (
    AnswerStatus,
    Loading,
    ModelStatus,
    Problem,
    StatusBar,
)

RAW = ("<thinking>Two and two. That makes 5.<reflection>No: 2 + 2 = 4.</reflection>"
       "So it is 4.</thinking><output>**Four.**</output>")


class AnswerHost(App[None]):
    def __init__(self) -> None:
        super().__init__()
        self.wanted: list[str] = []

    def compose(self) -> ComposeResult:
        yield AnswerView()

    def on_answer_view_wants(self, message: AnswerView.Wants) -> None:
        self.wanted.append(message.column)


def batches(turn: Turn, raw: str, size: int) -> list[StreamBatch | StreamFinished]:
    """The messages the worker sends for `raw` in pieces of `size` characters, built from the
    real parser's events folded into the turn's answer."""
    parser, growth, answer = ReflectionParser(turn.tag_format), PaneGrowth(), turn.answer
    sent: list[StreamBatch | StreamFinished] = []
    for at in range(0, len(raw), size):
        piece = raw[at:at + size]
        events = parser.feed(piece) + (parser.finish() if at + size >= len(raw) else [])
        whole = False
        answer.add_raw(piece, parser.channel)
        for event in events:
            answer.apply(event)
            if event.kind is EventKind.RECLASSIFY:
                growth.reset()
                whole = True
        sent.append(StreamBatch(turn, growth.read(answer), whole, piece, 10, at + size,
                                ChannelFacts(), 0.1, 0.2))
    found = corrections_of(answer)
    sent.append(StreamFinished(turn, GenerationStats(finish_reason=FinishReason.STOP), found,
                               panes(answer, found)))
    return sent


def sources(view: AnswerView) -> dict[Channel, str]:
    return {c: view.pane(c).document.source for c in Channel}


async def test_the_answer_view_draws_a_streamed_answer_as_a_whole_read_would():
    app = AnswerHost()
    async with app.run_test(size=(160, 40)) as pilot:
        view = app.query_one(AnswerView)
        view.raw_shown = True
        turn = Turn("What is 2 + 2?", TagFormat.REFLECTION)
        await view.show_turn(turn)
        sent = batches(turn, RAW, 7)
        for message in sent[:-1]:
            view.post_message(message)
        await pilot.pause()
        streamed = sources(view)
        assert "That makes 5." in streamed[Channel.THINKING]
        assert "Reflection 1" in streamed[Channel.REFLECTION]
        assert streamed[Channel.OUTPUT] == "**Four.**"
        assert view.query_one(RawView).text == RAW
        assert app.wanted and set(app.wanted) == {"output"}  # the output pane came forward
        view.post_message(sent[-1])
        await wait_for(pilot, lambda: sources(view)[Channel.REFLECTION].startswith(
            "**1 correction**"), what="the finished reflection pane")
        turn.stats = GenerationStats()
        assert sources(view) == panes(Answer.from_raw(RAW, TagFormat.REFLECTION),
                                      corrections_of(turn.answer))
        assert sources(view)[Channel.REFLECTION].startswith("**1 correction**")
        assert view.reflections_in_view() == 1


async def test_the_answer_view_holds_batches_while_the_user_types_and_loses_none():
    app = AnswerHost()
    async with app.run_test(size=(160, 40)) as pilot:
        view = app.query_one(AnswerView)
        turn = Turn("q", TagFormat.REFLECTION)
        await view.show_turn(turn)
        sent = batches(turn, RAW, 2)
        held = False
        for message in sent[:-1]:  # a key typed before each batch, as a fast typist does
            view.typed()
            view.post_message(message)
            await pilot.pause(0)
            held = held or view.waiting
        assert held, "no batch waited for the typing"
        for _ in range(200):  # the hold ends by itself, at most TYPING_HOLD_MAX_S after
            if not view.waiting and sources(view)[Channel.OUTPUT]:
                break
            await pilot.pause(0.05)
        assert sources(view)[Channel.OUTPUT] == "**Four.**"
        assert sources(view) == view.shown_text(turn)


async def test_the_answer_view_moves_output_into_thinking_when_the_template_opened_it():
    app = AnswerHost()
    async with app.run_test(size=(160, 40)) as pilot:
        view = app.query_one(AnswerView)
        turn = Turn("q", TagFormat.THINK)
        await view.show_turn(turn)
        for message in batches(turn, "Adding 2 and 3 gives 5.</think>The sum is 5.", 9)[:-1]:
            view.post_message(message)
        await wait_for(pilot, lambda: sources(view)[Channel.OUTPUT] == "The sum is 5.",
                       what="the output")
        assert sources(view)[Channel.THINKING] == "Adding 2 and 3 gives 5."
        assert sources(view)[Channel.OUTPUT] == "The sum is 5."


async def test_the_answer_view_reads_a_stored_answer_when_first_shown():
    app = AnswerHost()
    async with app.run_test(size=(160, 40)) as pilot:
        view = app.query_one(AnswerView)
        stored = Answer.from_raw(RAW, TagFormat.REFLECTION)
        # as a stored session gives it back: the texts, without where the reflections came
        turn = Turn("q", TagFormat.REFLECTION, Answer(stored.thinking, stored.reflections,
                                                      stored.output, RAW),
                    stats=GenerationStats())
        await view.show_turn(turn)
        await pilot.pause()
        assert sources(view) == panes(stored, corrections_of(stored))
        await view.show_turn(None)
        assert "appears here" in sources(view)[Channel.OUTPUT]
        view.demo = True
        await pilot.pause()
        assert "#starter-1" in sources(view)[Channel.OUTPUT]


class ColumnsHost(App[None]):
    def compose(self) -> ComposeResult:
        yield Columns(None, "history is off")


def displayed(app: App[None]) -> list[str]:
    return [c for c in ("sessions", "conversation", "thinking", "reflection", "output", "raw")
            if app.query_one(f"#{c}").display]


async def test_columns_side_by_side_when_wide_and_under_tabs_when_narrow():
    app = ColumnsHost()
    async with app.run_test(size=(160, 40)) as pilot:
        columns = app.query_one(Columns)
        columns.shown = visible_columns(UIConfig())
        await pilot.pause()
        assert not columns.narrow and not app.query_one(Tabs).display
        assert displayed(app) == ["conversation", "thinking", "reflection", "output"]
        columns.shown = visible_columns(UIConfig(output_only=True))
        assert displayed(app) == ["output"]
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        assert columns.narrow and app.query_one(Tabs).display
        columns.shown = visible_columns(UIConfig())
        assert displayed(app) == ["output"]  # one at a time
        columns.bring("thinking")
        assert displayed(app) == ["thinking"]


async def test_a_tab_the_user_picks_during_an_answer_stays_until_the_next_one():
    app = ColumnsHost()
    async with app.run_test(size=(80, 24)) as pilot:
        columns = app.query_one(Columns)
        columns.shown = visible_columns(UIConfig())
        await pilot.pause()
        columns.answering = True
        columns.bring("thinking")
        app.query_one(Tabs).active = "tab-conversation"  # as a click on the tab does
        await pilot.pause()
        assert columns.active == "conversation"
        app.query_one(AnswerView).post_message(AnswerView.Wants("output"))
        await pilot.pause()
        assert columns.active == "conversation"  # the user's choice holds
        columns.answering = False
        columns.answering = True  # the next answer
        columns.bring("output")
        assert columns.active == "output"
        columns.shown = visible_columns(UIConfig(raw_view=True))  # output is off: raw
        assert columns.active == "raw" and displayed(app) == ["raw"]


class StatusHost(App[None]):
    def compose(self) -> ComposeResult:
        yield StatusBar()


def status_text(app: App[None]) -> str:
    return str(app.query_one("#status-text").render())


async def test_the_status_bar_draws_what_is_assigned_and_fits_it_to_its_width():
    app = StatusHost()
    async with app.run_test(size=(160, 5)) as pilot:
        bar = app.query_one(StatusBar)
        bar.model_status = ModelStatus(model="Some-Model-70B", gpu_layers=40, layer_count=80,
                                       ctx_total=8192)
        bar.answer_status = AnswerStatus(ctx_used=6000, tokens_per_second=12.5)
        await pilot.pause()
        assert "Some-Model-70B │ GPU 40/80 layers │ ctx 6,000/8,192 73%" in status_text(app)
        assert "12.5 tok/s" in status_text(app)
        bar.activity = Loading("Some-Model-70B", 0.4)
        await pilot.pause()
        assert status_text(app).startswith("Loading Some-Model-70B")
        assert app.query_one(ProgressBar).display
        bar.activity = Problem("Could not load: \x1b[2J")
        await pilot.pause()
        assert status_text(app) == "Could not load: ␛[2J" and not app.query_one(ProgressBar).display
        bar.activity = None
        await pilot.resize_terminal(40, 5)
        await pilot.pause()
        narrow = status_text(app)
        assert narrow.startswith("Some-Model-70B") and "ctx 6,000/8,192" in narrow
        assert "GPU" not in narrow and len(narrow) <= 38  # the least useful parts gave way


async def test_at_80_columns_the_status_bar_keeps_what_changes_the_next_answers():
    app = StatusHost()
    async with app.run_test(size=(80, 5)) as pilot:
        bar = app.query_one(StatusBar)
        bar.model_status = ModelStatus(
            model="gemma-3-270m-q4_k_m.gguf", layer_count=18, ctx_total=8192, template="gemma",
            reading="reasoning: auto, an answer's first tag decides")
        bar.answer_status = AnswerStatus(ctx_used=5120, tokens_per_second=1042.1,
                                         first_token_s=0.2, control="effort high · budget 20")
        await pilot.pause()
        shown = status_text(app)
        assert "effort high · budget 20" in shown and "ctx 5,120/8,192" in shown, shown
        assert len(shown) <= 78
