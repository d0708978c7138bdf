"""Slow work stays off the UI thread: while it runs, the app goes on answering keys. No
timing: the slow call waits for an event the test sets only after the UI has answered."""

from __future__ import annotations

import threading

from support.app_pilot import loaded, make_app, wait_for
from textual.widgets import Input

from reflectchat.engine.llama import LlamaEngine
from reflectchat.ui.screens.help_screen import HelpScreen

released = threading.Event()  # a close that waits holds until the test sets this
closing = threading.Event()  # set once such a close has begun
closed = threading.Event()  # and once it is over


class SlowToClose(LlamaEngine):
    """A 70B's close takes seconds (its buffers freed, its file unmapped): this one waits."""

    def close(self) -> None:
        closing.set()
        released.wait(timeout=20)  # on the UI thread, it would hold the keys this long
        super().close()
        closed.set()


async def test_a_reload_closes_the_old_model_while_the_ui_answers_keys():
    for event in (released, closing, closed):
        event.clear()
    app = make_app(engine_class=SlowToClose)
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        await pilot.press("f8")
        await pilot.pause()
        app.screen.query_one("#field-n_threads", Input).value = "1"
        await pilot.press("ctrl+s")
        await wait_for(pilot, closing.is_set, what="the old model's close to begin")
        await pilot.press("f1")  # the old model is still closing
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), what="F1's screen")
        assert not closed.is_set()  # F1 was answered while the close went on
        await pilot.press("escape")
        released.set()
        await wait_for(pilot, lambda: app.engine is not None and app.runtime.n_threads == 1,
                       what="the reload")
        assert app.activity is None
