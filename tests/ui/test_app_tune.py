"""The Tune screen: the pairs with their scores and verdicts, sorting, the rewrites side by
side, and keep/drop saved to the store."""

from __future__ import annotations

from support.app_pilot import ask, loaded, make_app, wait_for
from textual.widgets import DataTable, Label, Static

from reflectchat.paths import store_file
from reflectchat.store.session_store import SessionStore
from reflectchat.store.tune_pairs import pairs, save
from reflectchat.ui.screens.tune_screen import TuneScreen


def column(table: DataTable, name: str) -> list[str]:
    index = [str(c.label) for c in table.columns.values()].index(name)
    return [str(table.get_row_at(r)[index]) for r in range(table.row_count)]


async def test_the_tune_screen_lists_sorts_compares_and_keeps():
    store = SessionStore.open(store_file())
    app = make_app(store=store)
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(pilot)
        for prompt in ("Solve the equation: 2x^2 + 5x - 3 = 0", "Debug this Python code",
                       "What is the capital of Peru?"):
            await ask(pilot, prompt)
        first, second, third = pairs(store)
        save(store, first.message_id, scores={"ifd": 0.9, "rifd": 0.7})
        save(store, second.message_id, scores={"ifd": 0.4, "rifd": 0.95},
             better_answer="Use n - 1 in the recursive call.",
             answer_scores={"ifd": 0.5, "rifd": 0.6})
        await pilot.press("ctrl+t")
        await wait_for(pilot, lambda: isinstance(app.screen, TuneScreen)
                       and app.screen.query_one(DataTable).row_count == 3, what="the pairs")
        table = app.screen.query_one(DataTable)
        assert column(table, "IFD") == ["0.900", "0.400", "-"]
        # the column is as wide as its prompts (it kept its header's width: the first word)
        prompt = next(c for c in table.columns.values() if str(c.label) == "prompt")
        assert prompt.content_width >= len("Solve the equation: 2x^2 + 5")
        note = app.screen.query_one("#tune-note", Label)
        assert "3 pairs, 2 scored, 1 kept" in str(note.render())
        assert column(table, "verdict")[1] == "answer: better answer: r-IFD fell"
        assert column(table, "verdict")[2] == "dropped: not scored"
        await pilot.press("i")  # lowest IFD first, unscored last
        assert column(table, "IFD") == ["0.400", "0.900", "-"]
        await pilot.press("i")
        assert column(table, "IFD") == ["0.900", "0.400", "-"]
        table.move_cursor(row=1)  # the pair with a better answer
        await pilot.pause()
        shown = str(app.screen.query_one("#tune-answer", Static).render())
        assert "Use n - 1 in the recursive call." in shown and "r-IFD 0.600" in shown
        assert "Debug this Python code" in str(app.screen.query_one("#tune-original",
                                                                   Static).render())
        table.move_cursor(row=0)
        await pilot.press("k")  # keep, over the rule's "not reflected"
        assert column(table, "verdict")[0] == "original: kept by you"
        assert "3 pairs, 2 scored, 2 kept" in str(note.render())  # counted again
        await wait_for(pilot, lambda: {p.message_id: p.saved.get("choice")
                                       for p in pairs(store)}[first.message_id] == "keep",
                       what="the choice stored")  # on a worker
        await pilot.press("k", "k")  # drop, then back to the rule
        await wait_for(pilot, lambda: "choice" not in pairs(store)[0].saved,
                       what="the rule again")
        assert third.output  # the third pair is listed even though unscored
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, TuneScreen), what="close")


async def test_saved_text_is_shown_literally_in_the_tune_screen():
    """A prompt with Rich markup, a hyperlink and an escape sequence: text, never markup."""
    from reflectchat.store.records import SessionMeta, StoredMessage

    store = SessionStore.open(store_file())
    hostile = "[/] [link=https://evil.example]click[/link] [bold]b \x1b]8;;https://x\x1b\\"
    store.start_session("t", SessionMeta(), [
        StoredMessage("user", hostile),
        StoredMessage("assistant", "an answer [/]", output="an answer [/]",
                      finish_reason="stop")])
    app = make_app(store=store)
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(pilot)
        await pilot.press("ctrl+t")
        await wait_for(pilot, lambda: isinstance(app.screen, TuneScreen)
                       and app.screen.query_one(DataTable).row_count == 1, what="the pair")
        table = app.screen.query_one(DataTable)
        shown = column(table, "prompt")[0]
        assert shown.startswith("[/] [link=https://evil")  # cut to the column, literal
        assert "\x1b" not in shown
        side = str(app.screen.query_one("#tune-original", Static).render())
        assert "[/] [link=https://evil.example]" in side and "\x1b" not in side
