"""Session history in the app: recording, the sidebar, search, resume, rename and delete."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.app_pilot import ask, loaded, make_app, wait_for
from textual.widgets import Input, Select, Static

from reflectchat.demo.scripted_model import Control, Script
from reflectchat.engine.base import Sampling
from reflectchat.paths import store_file
from reflectchat.store.records import SearchHit, SessionMeta, StoredMessage
from reflectchat.store.session_store import SessionStore
from reflectchat.store.sqlite_file import connect
from reflectchat.ui.app import ReflectChatApp
from reflectchat.ui.screens.session_dialogs import ConfirmScreen, RenameScreen
from reflectchat.ui.widgets.entry_list import EntryList
from reflectchat.ui.widgets.sessions_sidebar import SessionsSidebar

SOLVE = "Solve the equation: 2x^2 + 5x - 3 = 0"
DEBUG = "Debug this Python code"


def open_store() -> SessionStore:
    return SessionStore.open(store_file())


def sidebar(app) -> SessionsSidebar:
    return app.query_one(SessionsSidebar)


def entry_list(app) -> EntryList:
    return app.query_one("#session-list", EntryList)


def listed(app) -> list[str]:
    return [first.plain for first, _ in entry_list(app).rows]


async def test_each_chat_is_recorded_and_listed_newest_first():
    store = open_store()
    app = make_app(store=store)
    async with app.run_test(size=(160, 40)) as pilot:
        await loaded(pilot)
        await pilot.press("f6")
        await ask(pilot, SOLVE)
        first = app.chat.recorder.session_id
        await ask(pilot, DEBUG)
        assert app.chat.recorder.session_id == first  # the same chat, the same session
        await pilot.press("ctrl+n")
        await ask(pilot, DEBUG)
        second = app.chat.recorder.session_id
        assert second != first
        await wait_for(pilot, lambda: listed(app) == [DEBUG, SOLVE], what="the sidebar")
        assert sidebar(app).current == second
    [q1, a1, q2, a2] = store.messages(first)
    assert (q1.raw, q2.raw) == (SOLVE, DEBUG)
    assert a1.finish_reason == a2.finish_reason == "stop"
    assert "x = 1/2" in a1.output and "sign error" in a1.reflections[0]
    assert store.session(first).meta.n_ctx == 4096


async def test_a_session_opened_from_the_sidebar_continues_where_it_was():
    store = open_store()
    sid = store.start_session("Earlier", SessionMeta("demo"), [])[0]
    store.add_messages(sid, [
        StoredMessage("user", SOLVE),
        StoredMessage("assistant", "<thinking>half a tho", "half a tho", [], "", "reflection",
                      finish_reason="interrupted"),
    ])
    app = make_app(store=store)
    async with app.run_test(size=(160, 40)) as pilot:
        await loaded(pilot)
        await pilot.press("f6")
        await wait_for(pilot, lambda: listed(app) == ["Earlier"], what="the sidebar")
        options = entry_list(app)
        options.focus()
        options.highlighted = 0
        await pilot.press("enter")
        await wait_for(pilot, lambda: len(app.chat.conversation.turns) == 1, what="the session")
        assert app.chat.recorder.session_id == sid
        item = app.query_one(".reply-note")
        assert "interrupted" in str(item.render())
        await ask(pilot, DEBUG)
    assert [m.raw for m in store.messages(sid) if m.role == "user"] == [SOLVE, DEBUG]
    assert store.messages(sid)[-1].finish_reason == "stop"


async def test_search_finds_a_reflection_and_opens_it_highlighted():
    store = open_store()
    app = make_app(store=store)
    async with app.run_test(size=(160, 40)) as pilot:
        await loaded(pilot)
        await ask(pilot, SOLVE)
        await ask(pilot, DEBUG)
        solved = app.chat.recorder.session_id
        await pilot.press("ctrl+n")
        await pilot.press("f6")
        await pilot.press("f3")  # the reflection pane is hidden: a hit turns it back on
        assert not app.query_one("#reflection").display
        app.query_one("#session-search", Input).value = "sign err"
        app.query_one("#search-channel", Select).value = "reflection"
        await wait_for(pilot, lambda: len(sidebar(app).entries) == 1
                       and isinstance(sidebar(app).entries[0], SearchHit), what="search")
        hit = sidebar(app).entries[0]
        assert (hit.session_id, hit.channel, hit.reflection) == (solved, "reflection", 1)
        title, snippet = entry_list(app).rows[0]
        assert title.plain == f"reflection 1 · {SOLVE}"
        marked = [s for s in snippet.spans if "reverse" in str(s.style)]
        assert [snippet.plain[s.start:s.end] for s in marked] == ["sign", "error"]
        options = entry_list(app)
        options.focus()
        options.highlighted = 0
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.chat.recorder.session_id == solved, what="the session")
        await wait_for(pilot, lambda: app.chat.answer_view.viewed is app.chat.conversation.turns[0],
                       what="the turn")
        await wait_for(pilot, lambda: app.query_one("#reflection").display, timeout=5,
                       what="the reflection pane turned on")
        app.query_one("#search-channel", Select).value = "user"
        await wait_for(pilot, lambda: sidebar(app).entries == [], what="no user hits")


async def test_rename_and_delete_with_confirmation():
    store = open_store()
    app = make_app(store=store)
    async with app.run_test(size=(160, 40)) as pilot:
        await loaded(pilot)
        await ask(pilot, SOLVE)
        sid = app.chat.recorder.session_id
        await pilot.press("f6")
        await wait_for(pilot, lambda: len(sidebar(app).entries) == 1, what="the sidebar")
        options = entry_list(app)
        options.focus()
        options.highlighted = 0
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, RenameScreen), what="rename")
        field = app.screen.query_one(Input)
        field.value = "  Quadratic   formula "
        await pilot.press("enter")
        await wait_for(pilot, lambda: store.session(sid).title == "Quadratic formula",
                       what="the new title")
        await wait_for(pilot, lambda: listed(app) == ["Quadratic formula"], what="the list")
        options.focus()
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirm")
        await pilot.press("escape")  # cancel: nothing happens
        await pilot.pause()
        assert [s.id for s in store.sessions()] == [sid]
        options.focus()
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="confirm")
        await pilot.press("y")
        await wait_for(pilot, lambda: store.sessions() == [], what="the deletion")
        assert app.chat.conversation.turns == [] and app.chat.recorder.session_id is None
        await wait_for(pilot, lambda: sidebar(app).entries == [], what="an empty list")


async def ask_at_a_small_context(model: Path, store: SessionStore, sid: int) -> ReflectChatApp:
    """The stored session resumed at a 1,024-token context, asked once more; the app after."""
    from reflectchat.store.turns import conversation_from

    conversation = conversation_from(store.session(sid), store.messages(sid))
    app = make_app(model, conversation, store=store, session_id=sid, n_ctx=1024)
    async with app.run_test(size=(160, 40)) as pilot:
        await loaded(pilot)
        await ask(pilot, "and now?")
    return app


def trim_notes(app: ReflectChatApp) -> list[str]:
    return [n.message for n in app.notices if n.title == "Context trimmed"]


async def test_oldest_turns_are_trimmed_to_fit_and_the_user_is_told(make_model):
    model = make_model(Script("<|go|>", [Control("<thinking>"), "Short thought. ",
                                         Control("</thinking>"), Control("<output>"), "Done.",
                                         Control("</output>")]))
    store = open_store()
    meta = SessionMeta("test", sampling=Sampling(temperature=0.0))
    sid = store.start_session("Long", meta, [])[0]
    for n in range(20):
        store.add_messages(sid, [
            StoredMessage("user", f"question {n} " + "word " * 40),
            StoredMessage("assistant", "x", output=f"answer {n} " + "word " * 40,
                          tag_format="reflection", finish_reason="stop"),
        ])
    app = await ask_at_a_small_context(model, store, sid)
    trims = trim_notes(app)
    assert len(trims) == 1 and "1,024-token context" in trims[0]
    assert app.chat.conversation.turns[-1].answer.output.strip() == "Done."
    assert len(store.messages(sid)) == 42


async def test_one_turn_too_long_for_the_context_is_said_in_the_singular(make_model):
    """A 60,000-token answer over a server: it alone passes the context, and the note said
    "the model does not see them ...; it sees the last 0"."""
    model = make_model(Script("<|go|>", [Control("<output>"), "Done.", Control("</output>")]))
    store = open_store()
    sid = store.start_session("Long", SessionMeta("test"), [
        StoredMessage("user", "question"),
        StoredMessage("assistant", "x", output="word " * 2000, tag_format="reflection",
                      finish_reason="stop")])[0]
    app = await ask_at_a_small_context(model, store, sid)
    assert trim_notes(app) == [
        "The oldest turn no longer fits the 1,024-token context, so the model does not see it "
        "for this answer; it sees only the new prompt. Start with a larger --ctx to keep more."]


async def test_a_failing_store_does_not_stop_the_chat():
    path = store_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = connect(path)  # the store on a connection of the test's own, to fill its disk
    store = SessionStore(conn, path, None)
    app = make_app(store=store)
    async with app.run_test(size=(160, 40)) as pilot:
        await loaded(pilot)
        await ask(pilot, SOLVE)
        (pages,) = conn.execute("PRAGMA page_count").fetchone()
        conn.execute(f"PRAGMA max_page_count = {pages}")  # the disk is full
        await ask(pilot, DEBUG)
        assert "factorial" in app.chat.conversation.turns[-1].answer.output
        problems = [n.message for n in app.notices if n.title == "Session history"]
        assert len(problems) == 1 and "full" in problems[0], problems


async def test_without_a_store_the_sidebar_says_history_is_off():
    app = make_app(store_problem="The session store x.db was written by a newer reflectchat")
    async with app.run_test(size=(160, 40)) as pilot:
        await loaded(pilot)
        await pilot.press("f6")
        assert listed(app) == ["History is off:"]
        assert entry_list(app).rows[0][1].plain.startswith("The session store x.db")
        await ask(pilot, SOLVE)
        assert app.chat.recorder is None
        assert any(n.title == "Session history is off" for n in app.notices)


async def test_an_unreadable_store_is_moved_aside_and_the_user_told():
    path = store_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"my notes, not a database\n" * 200)
    app = make_app(store=open_store())
    async with app.run_test(size=(160, 40)) as pilot:
        await loaded(pilot)
        told = [n.message for n in app.notices if n.title == "Session history"]
        assert len(told) == 1 and "moved to" in told[0] and "fresh store" in told[0]
        await ask(pilot, SOLVE)
    [moved] = path.parent.glob("sessions.db.unreadable-*")
    assert moved.read_bytes().startswith(b"my notes")
    assert len(open_store().sessions()) == 1


async def test_a_thinking_hit_scrolls_to_the_matched_line_and_corrected_filters(make_model):
    lines = [f"Step {n}: nothing to see." for n in range(80)]
    thinking = "\n\n".join([*lines, "Step 80: the zebra appears here."])
    model = make_model(Script("<|go|>", [Control("<thinking>"), thinking,
                                         Control("</thinking>"), Control("<output>"), "Done.",
                                         Control("</output>")]))
    store = open_store()
    app = make_app(model, store=store, n_ctx=4096,
                   sampling=Sampling(temperature=0.0, max_tokens=4000))
    async with app.run_test(size=(160, 40)) as pilot:
        await loaded(pilot)
        await ask(pilot, "go")
        asked = app.chat.recorder.session_id
        await pilot.press("ctrl+n")
        await pilot.press("f6")
        app.query_one("#session-search", Input).value = "zebra"
        await wait_for(pilot, lambda: len(sidebar(app).entries) == 1
                       and isinstance(sidebar(app).entries[0], SearchHit), what="the hit")
        assert sidebar(app).entries[0].channel == "thinking"
        options = entry_list(app)
        options.focus()
        options.highlighted = 0
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.chat.recorder.session_id == asked, what="the session")
        pane = app.query_one("#thinking")
        await wait_for(pilot, lambda: pane.scroll_y > 0 and any(
            "zebra" in (b.source or "") for b in pane.document.query("MarkdownBlock")
            if b.region.y >= 0 and pane.region.contains(b.region.x, b.region.y)),
            what="the thinking scrolled to the zebra")
        app.query_one("#session-search", Input).value = ""
        app.query_one("#search-channel", Select).value = "corrected"
        await wait_for(pilot, lambda: sidebar(app).entries == [], what="no corrected answer")
        assert "No matches." in listed(app)


@pytest.mark.parametrize("to_results", ["enter", "down"])
async def test_search_by_keyboard_alone_opens_the_first_hit(to_results):
    """F6, /, the words, Enter (or Down), Enter: the second Enter opens the first hit."""
    store = open_store()
    app = make_app(store=store)
    async with app.run_test(size=(160, 40)) as pilot:
        await loaded(pilot)
        await ask(pilot, SOLVE)
        solved = app.chat.recorder.session_id
        await ask(pilot, DEBUG)
        await pilot.press("ctrl+n")
        await pilot.press("f6", "slash")
        await pilot.press(*"discriminant")
        await pilot.press(to_results)
        await wait_for(pilot, lambda: entry_list(app).highlighted == 0, what="the first hit")
        assert app.focused is entry_list(app)
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.chat.recorder.session_id == solved, what="the session")


async def test_a_session_deleted_under_the_app_goes_on_in_a_new_one_losing_nothing():
    store = open_store()
    app = make_app(store=store)
    async with app.run_test(size=(160, 40)) as pilot:
        await loaded(pilot)
        await ask(pilot, SOLVE)
        first = app.chat.recorder.session_id
        other = open_store()  # `reflectchat sessions delete` in another terminal
        other.delete(first)
        other.close()
        await ask(pilot, DEBUG)
        second = app.chat.recorder.session_id
        assert second not in (None, first)
        assert any(f"Session {first} was deleted elsewhere" in n.message for n in app.notices)
        messages = store.messages(second)
        assert [m.role for m in messages] == ["user", "assistant"]
        assert messages[0].raw == DEBUG and messages[1].finish_reason == "stop"
        assert messages[1].output  # the answer is kept whole


async def test_a_session_of_thousands_of_turns_opens_with_the_newest_listed():
    from reflectchat.store.turns import conversation_from
    from reflectchat.ui.widgets.conversation_list import MAX_LISTED, TurnItem

    store = open_store()
    turns = 5_000
    messages = []
    for n in range(turns):
        messages += [StoredMessage("user", f"question {n}"),
                     StoredMessage("assistant", f"answer {n}", output=f"answer {n}",
                                   finish_reason="stop")]
    session, _ = store.start_session("long", SessionMeta("demo"), messages)
    conversation = conversation_from(store.session(session), store.messages(session))
    app = make_app(conversation=conversation, store=store, session_id=session)
    async with app.run_test(size=(160, 40)) as pilot:
        await loaded(pilot)
        listed = list(app.chat.turn_list.query(TurnItem))
        assert len(listed) == MAX_LISTED and listed[-1].turn is conversation.turns[-1]
        note = app.chat.turn_list.query_one(".earlier")
        assert f"{turns - MAX_LISTED:,} earlier turns" in str(note.query_one(Static).render())
        assert app.chat.answer_view.viewed is conversation.turns[-1]
        await pilot.press("ctrl+up")  # the previous turn, still in the list
        await wait_for(pilot, lambda: app.chat.answer_view.viewed is conversation.turns[-2],
                       what="the turn before")


async def test_at_80_columns_the_footer_still_shows_how_to_close_the_sessions_list():
    from textual.widgets import Footer

    app = make_app(store=open_store())
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        await pilot.press("f6")
        await wait_for(pilot, lambda: app.query_one(SessionsSidebar).has_focus_within,
                       what="the sessions list")
        await pilot.pause()
        keys = list(app.query_one(Footer).query("FooterKey"))
        first = keys[0]
        assert first.key == "f6" and first.region.right <= 80  # not cut to "f"
        await pilot.press("f6")
        await wait_for(pilot, lambda: not app.query_one(SessionsSidebar).display,
                       what="the list to close")
