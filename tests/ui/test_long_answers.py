"""Very long answers (issue 27): a streaming pane draws a bounded number of blocks however long
the answer grows, never moves a reader who scrolled up, and at the end draws the text's end,
the whole on Home or a click;
an answer assembles at a cost per piece that does not grow with it, even read from another
thread while it grows."""

from __future__ import annotations

import gc
import threading
import time

from textual.app import App, ComposeResult
from textual.pilot import Pilot
from textual.strip import Strip
from textual.widgets.markdown import MarkdownBlock

from reflectchat.reflection.answer import Answer
from reflectchat.reflection.events import Channel, ChannelEvent, EventKind
from reflectchat.reflection.growing_text import GrowingText
from reflectchat.ui.widgets.channel_pane import (
    KEEP_CHARS,
    LIVE_CHARS,
    LONG_BLOCK,
    MOST_BLOCKS,
    MOST_CHARS,
    ChannelPane,
    last_blocks,
    tail_of,
)


class PaneHost(App[None]):
    def compose(self) -> ComposeResult:
        yield ChannelPane("Thinking", id="thinking")


def paragraph(n: int) -> str:
    return f"Step {n}: the sum so far is {n * (n + 1) // 2}, checked once more.\n\n"


def blocks(pane: ChannelPane) -> list[MarkdownBlock]:
    return [b for b in pane.document.children if isinstance(b, MarkdownBlock)]


async def stream_paragraphs(pane: ChannelPane, pilot: Pilot, count: int) -> int:
    """Stream `count` paragraphs into `pane`; the most blocks it drew at any time."""
    await pane.show("", streaming=True)
    most = 0
    for n in range(1, count + 1):
        await pane.write(paragraph(n))
        if n % 10 == 0:
            await pilot.pause()
            most = max(most, len(blocks(pane)))
    await pilot.pause()
    return most


async def test_a_streaming_pane_draws_a_bounded_number_of_blocks_and_folds_at_the_end():
    app = PaneHost()
    async with app.run_test(size=(100, 30)) as pilot:
        pane = app.query_one(ChannelPane)
        most = await stream_paragraphs(pane, pilot, 300)
        assert most <= MOST_BLOCKS + 1  # before: all 300 blocks, each laid out on every change
        source = pane.document.source
        assert "earlier paragraphs not drawn while the answer streams" in source
        assert paragraph(300).strip() in source and paragraph(1).strip() not in source
        assert pane.following and pane.scroll_y == pane.max_scroll_y  # still at the newest
        whole = "".join(paragraph(n) for n in range(1, 301))
        await pane.finish(whole)
        await pilot.pause()
        # folded: the text's own end, under a line that says how much comes before it
        source = pane.document.source
        note, _, tail = source.partition("\n\n")
        assert pane.folded == whole and whole.endswith(tail) and len(tail) == pane.drawn
        assert f"{len(whole) - len(tail):,} earlier characters" in note
        assert len(blocks(pane)) == MOST_BLOCKS + 1 and pane.scroll_y == pane.max_scroll_y
        pane.focus()
        await pilot.press("home")  # the whole text, from its top
        await pilot.pause()
        assert pane.document.source == whole and len(blocks(pane)) == 300
        assert pane.folded is None and pane.scroll_y == 0


async def test_a_click_on_the_fold_draws_the_whole_text():
    app = PaneHost()
    async with app.run_test(size=(100, 30)) as pilot:
        pane = app.query_one(ChannelPane)
        await stream_paragraphs(pane, pilot, 200)
        whole = "".join(paragraph(n) for n in range(1, 201))
        await pane.finish(whole)
        pane.scroll_home(animate=False, immediate=True)
        await pilot.pause()
        assert pane.folded == whole
        await pilot.click(ChannelPane, offset=(5, 0))  # the note, the pane's first line
        await pilot.pause()
        assert pane.document.source == whole and pane.folded is None


def test_a_fold_keeps_at_most_keep_chars_of_one_long_block():
    text = "".join(paragraph(n) for n in range(5)) + " ".join(["word"] * 30_000)
    tail = tail_of(text, MOST_BLOCKS, KEEP_CHARS)
    assert len(tail) <= KEEP_CHARS and text.endswith(tail) and tail.startswith("word")
    assert tail_of("short\n\ntext", MOST_BLOCKS, KEEP_CHARS) == "short\n\ntext"


async def test_one_endless_paragraph_is_drawn_within_a_bounded_number_of_characters():
    """A model that never ends a paragraph: the pane breaks it into blocks and draws at most
    `MOST_CHARS` of them (counted as paragraphs: 100,000 tokens of one paragraph drew 80
    blocks of 4,000 characters and were 13.5x as slow as 10,000)."""
    app = PaneHost()
    async with app.run_test(size=(100, 30)) as pilot:
        pane = app.query_one(ChannelPane)
        await pane.show("", streaming=True)
        most = 0
        for n in range(1, 1201):
            await pane.write(f"word{n} " * 20)
            if n % 20 == 0:
                await pilot.pause()
                most = max(most, len(pane.document.source))
        assert most <= MOST_CHARS + 200  # the note over it, and the last fragment
        source = pane.document.source
        assert "earlier paragraphs not drawn" in source and source.endswith("word1200 ")


def test_the_blocks_drawn_again_are_the_last_ones_within_live_chars():
    text = "".join(paragraph(n) for n in range(1, 301))
    live, dropped = last_blocks(text, 20, LIVE_CHARS)
    assert text.endswith(live) and len(live) <= LIVE_CHARS
    assert live.startswith("Step ") and dropped + live.count("Step ") == 300
    assert last_blocks(text, 20) == (text[text.index(paragraph(281)):], 280)
    huge = "x" * (LIVE_CHARS * 2)
    assert last_blocks(f"a\n\n{huge}", 20, LIVE_CHARS) == (huge, 1)  # one block at least
    assert last_blocks("", 20, LIVE_CHARS) == ("", 0)


async def test_a_reader_who_scrolled_up_is_not_moved_and_gets_the_held_text_on_return():
    app = PaneHost()
    async with app.run_test(size=(100, 30)) as pilot:
        pane = app.query_one(ChannelPane)
        await pane.show("", streaming=True)
        for n in range(1, 41):
            await pane.write(paragraph(n))
        await pilot.pause()
        pane.scroll_to(y=5, animate=False, immediate=True)
        pane.release_anchor()
        await pilot.pause()
        before = pane.document.source
        for n in range(41, 400):  # more than enough to drop blocks, were they drawn
            await pane.write(paragraph(n))
        await pilot.pause()
        assert pane.document.source == before and pane.scroll_y == 5
        assert pane.cue_shown
        pane.follow()  # End, or a click on the cue
        await pilot.pause()
        await pilot.pause()
        assert paragraph(399).strip() in pane.document.source
        assert pane.scroll_y == pane.max_scroll_y and not pane.cue_shown


async def test_a_block_that_never_ends_is_broken_while_it_streams_and_whole_at_the_end():
    app = PaneHost()
    async with app.run_test(size=(100, 30)) as pilot:
        pane = app.query_one(ChannelPane)
        await pane.show("", streaming=True)
        words = [f" word{n}" for n in range(20_000)]  # one paragraph of 150,000 characters
        for at in range(0, len(words), 50):
            await pane.write("".join(words[at:at + 50]))
        await pilot.pause()
        longest = max(len(b.source or "") for b in blocks(pane))
        assert longest < 2 * LONG_BLOCK  # before: one block, parsed and drawn whole each time
        whole = "".join(words)
        await pane.finish(whole)
        await pilot.pause()
        # folded at its end (the note, then the paragraph's last characters), whole on Home
        assert pane.folded == whole and len(blocks(pane)) == 2
        await pane.unfold()
        await pilot.pause()
        assert len(blocks(pane)) == 1 and pane.document.source == whole


def test_an_answer_assembles_at_a_flat_cost_per_piece():
    """200,000 pieces: `str +=` on the answer's fields copied it whole for each (100,000 took
    8 s, so this took half a minute); the bound is loose, for a loaded machine."""
    answer = Answer()
    start = time.perf_counter()
    for _ in range(200_000):
        answer.add_raw(" word", Channel.THINKING)
        answer.apply(ChannelEvent(EventKind.TEXT, Channel.THINKING, " word"))
    assert time.perf_counter() - start < 5
    assert answer.raw == answer.thinking == " word" * 200_000


def test_growing_text_read_while_another_thread_appends_loses_nothing():
    text = GrowingText("start:")
    done = threading.Event()
    seen: list[str] = []

    def reader() -> None:
        while not done.is_set():
            seen.append(str(text))

    thread = threading.Thread(target=reader)
    thread.start()
    for n in range(50_000):
        text.append(f"{n},")
    done.set()
    thread.join()
    expected = "start:" + "".join(f"{n}," for n in range(50_000))
    assert str(text) == expected
    assert all(expected.startswith(s) for s in seen[:: max(1, len(seen) // 200)])


def live_lines() -> int:
    """The drawn lines (Textual's `Strip`s) still alive."""
    gc.collect()
    return sum(isinstance(o, Strip) for o in gc.get_objects())


async def test_the_blocks_a_streaming_pane_drops_are_freed_with_what_they_drew():
    """Textual's lru_cache on an instance method kept the last 1,024 widgets' StylesCache
    objects, and every line each drew, alive after they were removed (textual#6665): 200
    more paragraphs left 468 more lines alive (36 with the cache cleared), and each frame's
    garbage collection slower."""
    app = PaneHost()
    async with app.run_test(size=(100, 30)) as pilot:
        pane = app.query_one(ChannelPane)
        await stream_paragraphs(pane, pilot, 100)
        before = live_lines()
        for n in range(101, 301):
            await pane.write(paragraph(n))
            if n % 10 == 0:
                await pilot.pause()
        await pilot.pause()
        assert live_lines() - before < MOST_BLOCKS


async def test_a_block_longer_than_the_room_is_not_drawn_again_on_every_fragment():
    """A code fence that never closes is one block however long (a blank line does not end
    it): past `MOST_CHARS` it was dropped and drawn whole again for each new fragment (647
    times for 60,000 characters, four minutes here); now once per `MOST_CHARS - LIVE_CHARS`.
    Fragments of ten lines: past `MOST_CHARS`, each of the 100 left was a redraw before."""
    app = PaneHost()
    async with app.run_test(size=(100, 30)) as pilot:
        pane = app.query_one(ChannelPane)
        await pane.show("", streaming=True)
        await pane.write("```\n")
        redrawn = []
        update = pane.document.update

        async def counted(markdown: str) -> None:
            redrawn.append(len(markdown))
            await update(markdown)

        pane.document.update = counted  # type: ignore[method-assign]
        for n in range(0, 2_000, 10):  # 60,000 characters of code, ten lines a fragment
            await pane.write("".join(f"x = {k:05}  # one line\n"[:30] for k in range(n, n + 10)))
        await pilot.pause()
        assert 1 <= len(redrawn) <= 60_000 // (MOST_CHARS - LIVE_CHARS)
        assert pane.document.source.rstrip("\n").endswith(
            "x = 01998  # one line\nx = 01999  # one line")
