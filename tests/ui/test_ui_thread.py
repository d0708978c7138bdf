"""Slow work stays off the UI thread: while it runs, the app goes on answering keys. No
timing: the slow call waits for an event the test sets only after the UI has answered."""

from __future__ import annotations

import sys
import threading

from support.app_pilot import STREAMING, ask, loaded, make_app, wait_for
from textual.widgets import Input

from reflectchat.engine.llama import LlamaEngine
from reflectchat.paths import store_file
from reflectchat.store.records import SearchHit, SessionMeta, StoredMessage
from reflectchat.store.session_store import SessionStore
from reflectchat.ui.screens.help_screen import HelpScreen
from reflectchat.ui.widgets.entry_list import EntryList
from reflectchat.ui.widgets.prompt_input import PromptInput
from reflectchat.ui.widgets.sessions_sidebar import SessionsSidebar


class Gate:
    """Holds a slow call: `began` is set when it starts, it goes on once `opened` is set (or
    after 20 s: on the UI thread, it would hold the keys that long), `ended` when it is over."""

    def __init__(self) -> None:
        self.began, self.opened, self.ended = (threading.Event() for _ in range(3))

    def clear(self) -> None:
        for event in (self.began, self.opened, self.ended):
            event.clear()

    def hold(self) -> None:
        self.began.set()
        self.opened.wait(timeout=20)


CLOSE, COUNT, READ, INFO, DELETE = Gate(), Gate(), Gate(), Gate(), Gate()


class SlowToClose(LlamaEngine):
    """A 70B's close takes seconds (its buffers freed, its file unmapped): this one waits."""

    def close(self) -> None:
        CLOSE.hold()
        super().close()
        CLOSE.ended.set()


async def test_a_reload_closes_the_old_model_while_the_ui_answers_keys():
    CLOSE.clear()
    app = make_app(engine_class=SlowToClose)
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        await pilot.press("f8")
        await pilot.pause()
        app.screen.query_one("#field-n_threads", Input).value = "1"
        await pilot.press("ctrl+s")
        await wait_for(pilot, CLOSE.began.is_set, what="the old model's close to begin")
        await pilot.press("f1")  # the old model is still closing
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), what="F1's screen")
        assert not CLOSE.ended.is_set()  # F1 was answered while the close went on
        await pilot.press("escape")
        CLOSE.opened.set()
        host = app.host
        await wait_for(pilot, lambda: host.engine is not None and host.runtime.n_threads == 1,
                       what="the reload")
        assert app.host.activity is None


class SlowToCount(LlamaEngine):
    """Counting a long chat's tokens renders its template and tokenizes it all: this waits."""

    def count_tokens(self, messages):  # type: ignore[no-untyped-def]
        COUNT.hold()
        return super().count_tokens(messages)


async def test_f9_counts_what_it_freed_while_the_ui_answers_keys():
    COUNT.opened.set()  # the answers' own counts go through
    app = make_app(engine_class=SlowToCount)
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        await ask(pilot, "Solve the equation: 2x^2 + 5x - 3 = 0")
        await ask(pilot, "Translate 'it is raining' into French")
        COUNT.clear()
        await pilot.press("f9")
        await wait_for(pilot, COUNT.began.is_set, what="the count to begin")
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), what="F1's screen")
        assert not any(n.title == "Context freed" for n in app.notices)
        await pilot.press("escape")
        COUNT.opened.set()
        await wait_for(pilot, lambda: any(n.title == "Context freed"
                                          for n in app.notices), what="the count")


def one_turn_session(store: SessionStore, title: str, prompt: str, output: str) -> int:
    """A stored session of one answered turn; its id."""
    sid = store.start_session(title, SessionMeta("demo"), [])[0]
    store.add_messages(sid, [StoredMessage("user", prompt),
                             StoredMessage("assistant", output, "", [], output, "reflection",
                                           finish_reason="stop")])
    return sid


class SlowToRead(SessionStore):
    """A session of thousands of turns takes seconds to read and parse: this read waits."""

    def messages(self, session_id):  # type: ignore[no-untyped-def]
        READ.hold()
        return super().messages(session_id)


async def test_a_session_opens_from_the_sidebar_while_the_ui_answers_keys():
    READ.clear()
    store = SlowToRead.open(store_file())
    sid = one_turn_session(store, "Earlier", "Solve 2x = 1", "x = 1/2")
    app = make_app(store=store)
    async with app.run_test(size=(160, 40)) as pilot:
        await loaded(pilot)
        await pilot.press("f6")
        await wait_for(pilot, lambda: app.query_one("#session-list", EntryList).rows,
                       what="the sidebar")
        entries = app.query_one("#session-list", EntryList)
        entries.focus()
        entries.highlighted = 0
        await pilot.press("enter")
        await wait_for(pilot, READ.began.is_set, what="the read to begin")
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), what="F1's screen")
        assert app.chat.conversation.turns == []  # still reading
        await pilot.press("escape")
        READ.opened.set()
        prompt = app.query_one(PromptInput)
        await wait_for(pilot, lambda: app.focused is prompt, what="the session shown")
        assert len(app.chat.conversation.turns) == 1 and app.chat.recorder.session_id == sid


class SlowToChange(SessionStore):
    """A store on a slow disk: reading a session's row and deleting one wait."""

    def session(self, session_id):  # type: ignore[no-untyped-def]
        INFO.hold()
        info = super().session(session_id)
        INFO.ended.set()
        return info

    def delete(self, session_id):  # type: ignore[no-untyped-def]
        DELETE.hold()
        super().delete(session_id)
        DELETE.ended.set()


async def test_deleting_a_search_hits_session_reads_and_deletes_while_the_ui_answers_keys():
    """A hit names its session; what the confirmation says (its title and turns) is read from
    the store, and the delete (thousands of turns: seconds) runs, each while keys work."""
    INFO.clear()
    DELETE.clear()
    store = SlowToChange.open(store_file())
    one_turn_session(store, "Zebras", "How fast is a zebra?", "Fast.")
    app = make_app(store=store)
    async with app.run_test(size=(160, 40)) as pilot:
        await loaded(pilot)
        await pilot.press("f6")
        app.query_one("#session-search", Input).value = "zebra"
        entries = app.query_one("#session-list", EntryList)
        sidebar = app.query_one(SessionsSidebar)
        await wait_for(pilot, lambda: len(sidebar.entries) == 1
                       and isinstance(sidebar.entries[0], SearchHit), what="the hit")
        entries.focus()
        entries.highlighted = 0
        await pilot.press("d")
        await wait_for(pilot, INFO.began.is_set, what="the session's row to be read")
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), what="F1's screen")
        assert not INFO.ended.is_set()  # F1 was answered while the read waited
        await pilot.press("escape")
        INFO.opened.set()
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ConfirmScreen",
                       what="the confirmation")
        assert "Zebras" in str(app.screen.query_one("Label").render())
        await pilot.press("y")  # Delete
        await wait_for(pilot, DELETE.began.is_set, what="the delete to begin")
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), what="F1's screen")
        assert not DELETE.ended.is_set()
        await pilot.press("escape")
        DELETE.opened.set()
        await wait_for(pilot, DELETE.ended.is_set, what="the delete")
        await wait_for(pilot, lambda: any(n.message == "Deleted 'Zebras'." for n in app.notices),
                       what="the notice")
    assert store.sessions() == []


async def test_while_an_answer_streams_the_ui_reads_only_what_its_batches_carry(make_model):
    """The worker changes the answer as tokens come; the UI thread reads copies (the output
    so far, the raw text, the number of reflections) until the answer ends. Every read of the
    live answer's texts on the UI thread is caught by a trace hook on that thread, while
    the user copies, exports, switches the raw view on and asks for the reflections."""
    from reflectchat.demo.scripted_model import Control, Script
    from reflectchat.engine.base import Sampling
    from reflectchat.reflection.answer import Answer

    texts = {prop.fget.__code__ for prop in (Answer.thinking, Answer.output, Answer.raw,
                                             Answer.reflections)}
    endless = Script("<|go|>", [Control("<thinking>"), "Thinking it over. ",
                                Control("<reflection>"), "Checked. ", Control("</reflection>"),
                                Control("</thinking>"), Control("<output>"), "An answer. ",
                                Control("</output>")], loops=True)
    app = make_app(make_model(endless, cost=STREAMING), n_ctx=32768,
                   sampling=Sampling(temperature=0.0, max_tokens=1 << 20, stop_loops=False))
    reads: list[str] = []

    def watch(frame, event, _arg) -> None:  # type: ignore[no-untyped-def]
        """Called at each Python call on the UI thread (no line tracing): cheap first."""
        if frame.f_code in texts:
            live = app.chat.live
            if live is not None and frame.f_locals.get("self") is live.answer:
                reads.append(f"{frame.f_back.f_code.co_name} read {frame.f_code.co_name}")

    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(pilot)
        await ask(pilot, "go", wait=False)
        await wait_for(pilot, lambda: app.chat.live is not None and "An answer." in "".join(
            app.chat.answer_view.shown_text(app.chat.live).values()), what="the output to stream")

        def shown() -> int:
            return sum(map(len, app.chat.answer_view.shown_text(app.chat.live).values()))

        sys.settrace(watch)  # from here: batches come, and the user acts
        try:
            app.chat.action_copy_output()
            app.action_toggle_raw()  # F5: the raw text so far
            app.chat.action_export()
            app.chat.answer_view.code_blocks()  # the palette's code blocks and reflections
            assert app.chat.answer_view.reflections_in_view() > 0
            before = shown()
            await wait_for(pilot, lambda: shown() > before, what="a batch while traced")
            assert app.chat.live is not None  # all of it while the answer streamed
        finally:
            sys.settrace(None)
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.chat.live is None, what="the answer to stop")
    assert reads == []


async def test_a_reopened_long_answer_is_laid_out_off_the_ui_thread_and_folded_to_its_end():
    """A stored answer of 1,300 paragraphs (45,000 characters): its panes are built on a
    thread (never `stored_panes` on the UI thread), the output drawn folded to its end as a
    streamed answer ends, the reflection pane whole from its top, and Home draws it whole."""
    from reflectchat.store.turns import conversation_from
    from reflectchat.ui.widgets.answer_view import stored_panes
    from reflectchat.ui.widgets.channel_pane import ChannelPane

    output = "".join(f"Paragraph {n}: the sum so far is {n * 3}.\n\n" for n in range(1_300))
    store = SessionStore.open(store_file())
    session, _ = store.start_session("long", SessionMeta("test"), [
        StoredMessage("user", "question"),
        StoredMessage("assistant", f"<output>{output}</output>", "I check.", ["A fix."],
                      output, "reflection", False, "stop")])
    conversation = conversation_from(store.session(session), store.messages(session))
    app = make_app(conversation=conversation, store=store, session_id=session)
    on_ui_thread: list[str] = []

    def watch(frame, event, _arg) -> None:  # type: ignore[no-untyped-def]
        if frame.f_code is stored_panes.__code__:
            on_ui_thread.append("stored_panes")

    sys.settrace(watch)  # until the reopened turn is drawn
    try:
        async with app.run_test(size=(160, 48)) as pilot:
            await loaded(pilot)
            pane = app.query_one("#output", ChannelPane)
            await wait_for(pilot, lambda: pane.folded is not None, what="the folded output")
            sys.settrace(None)
            assert on_ui_thread == []
            assert pane.drawn < len(output) // 10 and "Paragraph 1299:" in pane.document.source
            assert app.query_one("#reflection", ChannelPane).folded is None
            pane.focus()
            await pilot.press("home")
            await wait_for(pilot, lambda: pane.folded is None, what="the whole output")
            assert "Paragraph 0:" in pane.document.source
    finally:
        sys.settrace(None)
