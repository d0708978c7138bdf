"""A session opened again in the app puts its saved model context back as it opens (off the UI
thread), says so in the status bar and a notification, and saves the context again after each
answer (on the answer's worker)."""

from __future__ import annotations

import json
import subprocess
import sys

from support.app_pilot import ask, loaded, make_app, wait_for

from reflectchat.demo.scripted_model import Script
from reflectchat.engine.saved_context import context_file
from reflectchat.store.session_store import SessionStore
from reflectchat.store.turns import conversation_from
from reflectchat.ui.widgets.status_bar import StatusBar


async def test_a_reopened_session_puts_its_saved_context_back(make_model):
    model = make_model(Script("<|go|>", ["Counting to three: one, two, three."]))
    done = subprocess.run([sys.executable, "-m", "reflectchat", "ask", "--json", "--model",
                           str(model), "--ctx", "2048", "Count"], capture_output=True,
                          text=True, timeout=120)
    session = json.loads(done.stdout)["session"]
    saved = context_file(session).stat().st_mtime_ns
    store = SessionStore.open()
    conversation = conversation_from(store.session(session), store.messages(session))
    app = make_app(model, conversation=conversation, store=store, session_id=session,
                   n_ctx=2048)
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(pilot)  # the session is open: its context goes back before any prompt
        await wait_for(pilot, lambda: any(n.message.startswith("context restored: ")
                                          for n in app.notices), what="the context restored")
        status = str(app.query_one(StatusBar).query_one("#status-text").render())
        assert "context restored: " in status and " tokens in " in status
        await ask(pilot, "Count again")
        await wait_for(pilot, lambda: context_file(session).stat().st_mtime_ns > saved,
                       what="the context saved again after the answer")
        await ask(pilot, "And once more")  # the model holds it now: nothing more to say
        assert sum("context restored" in n.message for n in app.notices) == 1


async def test_the_disk_budget_for_saved_contexts_is_set_in_f8(make_model):
    from textual.widgets import Input

    from reflectchat.config import ConfigFile

    app = make_app(make_model(Script("<|go|>", ["Hello."])))
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(pilot)
        await pilot.press("f8")
        await wait_for(pilot, lambda: app.screen.id == "settings", what="the settings")
        field = app.screen.query_one("#field-context-budget", Input)
        assert field.value == "4.0GiB"  # the default
        field.value = "lots"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "Saved contexts take a size like 4GiB or 500MiB, not 'lots'" in str(
            app.screen.query_one("#settings-error").render())
        field.value = "512MiB"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: ConfigFile().context_budget() == 512 * 2**20,
                       what="the budget in config.toml")


async def test_a_context_that_cannot_be_saved_is_a_notice_and_the_chat_goes_on(make_model):
    """The worker that answered saves the context after it: a folder that cannot be made (or
    a full disk) is said, and the app, the answer and the session stay."""
    folder = context_file(1).parent
    folder.parent.mkdir(parents=True, exist_ok=True)
    folder.write_text("another tool's file where the folder goes")
    store = SessionStore.open()
    app = make_app(make_model(Script("<|go|>", ["Counting to three: one, two, three."])),
                   store=store, n_ctx=2048)
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(pilot)
        await ask(pilot, "Count")
        await wait_for(pilot, lambda: any("context was not saved" in n.message
                                          for n in app.notices), what="the notice")
        await ask(pilot, "Count again")  # the chat goes on
        assert app.is_running
    [session] = store.sessions()
    assert [m.role for m in store.messages(session.id)] == ["user", "assistant"] * 2
