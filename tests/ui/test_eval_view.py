"""The Eval view (Ctrl+G): the runs `reflectchat eval` kept, an item per row, the wrong ones
alone on `w`, and the highlighted answer's panes as the chat draws them; results text shown
literally."""

from __future__ import annotations

import time

from support.app_pilot import loaded, make_app, wait_for
from textual.widgets import DataTable, Label

from reflectchat.eval.results import Result, ResultsFile, RunInfo, results_file
from reflectchat.ui.screens.eval_screen import EvalScreen
from reflectchat.ui.widgets.channel_pane import ChannelPane

FIXED = ("<thinking>So there are 10 boxes.<reflection>Wait, one shelf was counted twice."
         "</reflection>So there are 8 boxes.</thinking><output>\\boxed{8}</output>")
BROKEN = ("<thinking>The total is 12.<reflection>Maybe it doubles.</reflection>The total is "
          "24.</thinking><output>\\boxed{24} [link=https://x.example]x[/link]</output>")


def result(item: str, correct: bool, got: str, raw: str, reference: str,
           before_correct: bool | None) -> Result:
    return Result(item, "default", correct, got, reference, raw.count("<reflection>"), None,
                  before_correct, 5, 30, 0.5, 20.0, "stop", None, raw, "reflection")


async def test_the_eval_view_lists_a_runs_answers_filters_the_wrong_and_opens_their_panes():
    store = ResultsFile(results_file("older"))
    store.describe(RunInfo("older set", "m", ["default"], 1, "number", time.time() - 100))
    store.add(result("x", True, "1", "<output>1</output>", "1", None))
    store = ResultsFile(results_file("newest"))
    store.describe(RunInfo("boxes and coins", "solver.gguf", ["default"], 2, "number",
                           time.time()))
    store.add(result("boxes", True, "8", FIXED, "8", False))
    store.add(result("coins", False, "24 [/]", BROKEN, "12", True))
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await loaded(pilot)
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: isinstance(app.screen, EvalScreen)
                       and app.screen.query_one(DataTable).row_count == 2, what="the run")
        screen = app.screen
        note = str(screen.query_one("#eval-note", Label).render())
        assert "boxes and coins on solver.gguf" in note and "default 1/2 (fixed 1, broken 1)" \
            in note
        table = screen.query_one(DataTable)
        rows = [[str(c) for c in table.get_row_at(n)] for n in range(table.row_count)]
        assert rows[0][:3] == ["boxes", "default", "right"] and rows[0][5] == "1: fixed"
        assert rows[1][2:] == ["wrong", "24 [/]", "12", "1: broken"]  # literal, not markup
        thinking = screen.query_one("#eval-thinking", ChannelPane)
        await wait_for(pilot, lambda: "So there are 8 boxes." in thinking.document.source,
                       what="the first answer's panes")
        await pilot.press("w")
        await wait_for(pilot, lambda: table.row_count == 1, what="the wrong answers alone")
        assert str(table.get_row_at(0)[0]) == "coins"
        output = screen.query_one("#eval-output", ChannelPane)
        await wait_for(pilot, lambda: "[link=https://x.example]" in output.document.source,
                       what="the wrong answer's panes")
        reflection = screen.query_one("#eval-reflection", ChannelPane)
        assert "Maybe it doubles." in reflection.document.source
        await pilot.press("left_square_bracket")  # the older run
        await wait_for(pilot, lambda: "older set" in str(
            screen.query_one("#eval-note", Label).render()), what="the older run")
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, EvalScreen)


async def test_with_no_runs_the_eval_view_says_how_to_make_one():
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot)
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: isinstance(app.screen, EvalScreen)
                       and "No evaluations yet" in str(
                           app.screen.query_one("#eval-note", Label).render()),
                       what="the note")
