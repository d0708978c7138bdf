"""SVG snapshots of the main layouts (pytest-textual-snapshot): a resumed conversation with a
finished answer, so no timing figure varies. Update with `pytest --snapshot-update` and review
the SVGs in tests/ui/__snapshots__/ before committing."""

from __future__ import annotations

import pytest
from support.app_pilot import loaded, make_app

from reflectchat.chat.comparison import Comparison, Setup
from reflectchat.chat.conversation import Conversation, Turn
from reflectchat.engine.base import FinishReason, GenerationStats, Sampling, TagFormat
from reflectchat.paths import store_file
from reflectchat.reflection.answer import Answer
from reflectchat.store.records import SessionMeta, StoredMessage
from reflectchat.store.session_store import SessionStore

RAW = (
    "<thinking>\nThe user asks how many r's are in \"strawberry\". Spelling it out: "
    "s-t-r-a-w-b-e-r-r-y. I count the r's: one after the t, and one in \"berry\". So 2.\n"
    "<reflection>\nI miscounted: \"berry\" has two r's (b-e-r-r-y), and there is one after "
    "the t, so the total is 3, not 2.\n</reflection>\n"
    "Checking again letter by letter: s, t, **r**, a, w, b, e, **r**, **r**, y. Three r's.\n"
    "</thinking>\n<output>\nThere are **3** r's in \"strawberry\".\n\n"
    "```python\nprint(\"strawberry\".count(\"r\"))  # 3\n```\n</output>"
)


def resumed() -> Conversation:
    answer = Answer.from_raw(RAW, TagFormat.REFLECTION)
    answer.facts.tokens.update(thinking=96, reflection=8, output=27)
    answer.facts.seconds.update(thinking=6.5, reflection=0.6, output=1.9)
    answer.facts.first_output_s = 7.5
    turn = Turn("How many r's are in strawberry?", TagFormat.REFLECTION, answer)
    turn.stats = GenerationStats(prompt_tokens=212, completion_tokens=131,
                                 time_to_first_token_s=0.42, tokens_per_second=14.6,
                                 total_s=9.4, finish_reason=FinishReason.STOP)
    return Conversation("", Sampling(), [turn])


def keys(*pressed: str):
    async def run_before(pilot) -> None:
        await loaded(pilot)
        pilot.app.query_one("#prompt").cursor_blink = False
        await pilot.press(*pressed)
        await pilot.pause(0.2)
    return run_before


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
@pytest.mark.parametrize("pressed", [(), ("f2", "f3"), ("f4",), ("f5",)],
                         ids=["all-panes", "reasoning-hidden", "output-only", "raw"])
def test_layout(snap_compare, size, pressed):
    app = make_app(conversation=resumed())
    assert snap_compare(app, terminal_size=size, run_before=keys(*pressed))


def stored_sessions() -> SessionStore:
    store = SessionStore.open(store_file())
    noon = 1_795_000_000 - 1_795_000_000 % 86_400 + 43_200  # midday UTC, a fixed day
    chats = [("Explain the quadratic formula", "<output>Use it.</output>"),
             ("How many r's are in strawberry?", RAW)]
    for n, (prompt, raw) in enumerate(chats):
        day = noon + n * 86_400
        answer = Answer.from_raw(raw, TagFormat.REFLECTION)
        store.import_session(prompt, SessionMeta("reflection-llama-3.1-70b", "Q4_K_M"), day,
                             day, [
            StoredMessage("user", prompt, created=day),
            StoredMessage("assistant", raw, answer.thinking.strip(),
                          [r.strip() for r in answer.reflections], answer.output.strip(),
                          "reflection", finish_reason="stop", created=day),
        ])
    return store


@pytest.mark.parametrize("query", ["", "miscounted"], ids=["list", "search"])
def test_sessions_sidebar(snap_compare, query):
    app = make_app(conversation=resumed(), store=stored_sessions())

    async def run_before(pilot) -> None:
        await keys("f6")(pilot)
        if query:
            pilot.app.query_one("#session-search").value = query
            await pilot.pause(0.5)

    assert snap_compare(app, terminal_size=(160, 48), run_before=run_before)


RAW_B = ("<thinking>\nstrawberry: s-t-r-a-w-b-e-r-r-y. The r's: after the t, and the double r "
         "in berry. That makes 3.\n</thinking>\n<output>\n\"strawberry\" has **3** r's.\n"
         "</output>")


def compared() -> Conversation:
    """A resumed chat whose answer was compared side by side (fixed figures) and marked."""
    conversation = resumed()
    a = conversation.turns[0]
    answer = Answer.from_raw(RAW_B, TagFormat.REFLECTION)
    answer.facts.tokens.update(thinking=31, output=12)
    answer.facts.seconds.update(thinking=4.1, output=1.0)
    answer.facts.first_output_s = 4.6
    b = Turn(a.prompt, TagFormat.REFLECTION, answer)
    b.stats = GenerationStats(prompt_tokens=212, completion_tokens=43,
                              time_to_first_token_s=0.5, tokens_per_second=9.8, total_s=5.2,
                              finish_reason=FinishReason.STOP)
    comparison = Comparison((Setup("reflection-70b Q4_K_M", effort="high"),
                             Setup("reflection-70b Q8_0", effort="low", thinking_budget=200)),
                            [a, b], "b")
    a.comparison = b.comparison = comparison
    conversation.turns[0] = b
    return conversation


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_two_answers_side_by_side(snap_compare, size):
    """F10 on a compared answer shows both again: columns at 160, tabs at 80."""
    app = make_app(conversation=compared())
    assert snap_compare(app, terminal_size=size, run_before=keys("f10"))
