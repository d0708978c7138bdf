"""One pane (thinking, reflection or output): Markdown that streams and follows the newest text.

Fragments go through Textual's `MarkdownStream`, which batches them; at the end, a full render
cleans up any block the stream left different from a full parse. While the user has not
scrolled up, the pane is anchored to its end; scrolling up pauses that, and End or the
"latest" cue resumes it.

The cost of drawing a fragment must not grow with the answer (issue 27: a 100,000-token answer
drew 3.6x slower per token than a 10,000-token one, and Esc waited behind it), and Textual lays
out every block of a document on each change. So while an answer streams, a pane draws at most
`MOST_BLOCKS` blocks or `MOST_CHARS` characters: past that, only its last `LIVE_BLOCKS`
blocks, of at most `LIVE_CHARS` characters, are drawn again, under a line that says how many
came before (each block is then mounted about 1.3 times in all);
a block that grows past `LONG_BLOCK` characters is broken at its next space; and a pane the
reader has scrolled up in holds new text until they come back to its end (what they read does
not move). When the answer ends, a pane that was cut so while streaming stays folded: its end
is drawn (the last `MOST_BLOCKS` blocks, at most `KEEP_CHARS` characters) under a line that says
how much comes before, and Home draws the whole text (at 100,000 tokens that takes seconds, so
it is drawn when the reader asks for it, not on every long answer).
"""

from __future__ import annotations

import asyncio
import itertools
import re

from markdown_it import MarkdownIt
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Markdown
from textual.widgets._markdown import MarkdownBlock, MarkdownStream

from reflectchat.ui.textual_runtime import release_removed_widgets_lines

NOTHING = "*none in this answer*"
STOPPED_EARLY = "*stopped before answering*"
MOST_BLOCKS = 80
LIVE_BLOCKS = 20
LONG_BLOCK = 1000
MOST_CHARS = 30_000
LIVE_CHARS = 8_000
KEEP_CHARS = 40_000


def literal_markdown() -> MarkdownIt:
    """Markdown without raw HTML: a model's `<b>` or `<div>` is shown as text, not dropped."""
    return MarkdownIt("gfm-like", {"html": False})


def _block_lines(text: str) -> list[tuple[int, int]]:
    """The line ranges of the top-level blocks of `text`."""
    return [(t.map[0], t.map[1]) for t in literal_markdown().parse(text)
            if t.level == 0 and t.nesting >= 0 and t.map is not None]


def _same_blocks(text: str, ranges: list[tuple[int, int]]) -> bool:
    """Whether a full parse of `text` gives top-level blocks over exactly these line ranges."""
    return _block_lines(text) == ranges


def last_blocks(text: str, keep: int, most_chars: int | None = None) -> tuple[str, int]:
    """The text from the start of the last `keep` top-level blocks of `text`, fewer where
    they pass `most_chars` characters (never fewer than one), and how many blocks come
    before it."""
    starts = [start for start, _ in _block_lines(text)]
    lines = text.split("\n")
    offsets = list(itertools.accumulate((len(line) + 1 for line in lines), initial=0))
    first = max(0, len(starts) - keep)
    if most_chars is not None:
        while first < len(starts) - 1 and len(text) - offsets[starts[first]] > most_chars:
            first += 1
    if first == 0:
        return text, 0
    return text[offsets[starts[first]]:], first


def room_after(live: str) -> int:
    """The characters a streaming pane that draws `live` takes before it drops blocks again:
    up to `MOST_CHARS` in all, and never less than the room past `LIVE_CHARS` (a single block
    longer than that, such as a code fence that never closes, would otherwise be drawn again
    on every fragment)."""
    return MOST_CHARS - min(len(live), LIVE_CHARS)


def tail_of(text: str, keep_blocks: int, keep_chars: int) -> str:
    """The end of `text` a folded pane draws: its last `keep_blocks` top-level blocks, and no
    more than about `keep_chars` characters of them (then from a space or a line's start)."""
    tail, _ = last_blocks(text, keep_blocks)
    if len(tail) <= keep_chars:
        return tail
    space = re.compile(r"\s").search(tail, len(tail) - keep_chars)
    return tail[space.end():] if space else tail


def folded_note(characters: int) -> str:
    return (f"*… {characters:,} earlier characters: click here or press Home to draw the whole "
            "text.*\n\n")


def earlier_note(blocks: int) -> str:
    return (f"*… {blocks:,} earlier paragraph{'s' * (blocks != 1)} not drawn "
            "while the answer streams (Esc stops it).*\n\n")


CUE = "↓ latest (End)"  # in the bottom border, where it covers no text


class ChannelPane(VerticalScroll):
    BINDINGS = [Binding("end", "follow", "Latest", show=False,
                        tooltip="Follow the newest text in a pane (or click the cue)"),
                Binding("home", "top", "First", show=False,
                        tooltip="Go to a pane's first line; a long answer shown from its end "
                                "is then drawn whole (or click the line over it)")]

    def __init__(self, title: str, *, id: str) -> None:
        super().__init__(id=id, classes="pane")
        self.border_title = title
        self._stream: MarkdownStream | None = None
        self.document = Markdown(parser_factory=literal_markdown, open_links=False)
        self._note = ""  # over a streaming pane's text: how many blocks are not drawn
        self._dropped = 0  # those blocks
        self._run = 0  # characters streamed since the last blank line
        self._room = MOST_CHARS  # characters a streaming pane takes before it drops blocks
        self._held: list[str] = []  # what came while the reader was scrolled up
        self.drawn = 0  # characters of the pane's text given to the document so far
        self.folded: str | None = None  # a finished pane's whole text, while only its end shows
        self._lock = asyncio.Lock()  # one change of the document at a time

    def compose(self) -> ComposeResult:
        yield self.document

    @property
    def cue_shown(self) -> bool:
        """The "↓ latest" cue is in the bottom border: newer text is below the view."""
        return self.border_subtitle == CUE

    async def on_click(self, event: events.Click) -> None:
        """A click on the bottom border while the cue is there follows the newest text; a
        click on a folded pane's first line draws its whole text."""
        if self.cue_shown and event.y == self.outer_size.height - 1:
            event.stop()
            self.follow()
        elif self.folded is not None and self.document.children and \
                self.document.children[0].region.height and \
                event.screen_y <= self.document.children[0].region.bottom:  # on the note
            event.stop()
            await self.unfold()

    @property
    def following(self) -> bool:
        # Textual keeps an anchored pane at its end until the user scrolls ("releases" it).
        return self.is_anchored and not self._anchor_released

    async def show(self, text: str, streaming: bool, empty: str = NOTHING,
                   top: bool = False) -> None:
        """Replace the pane's text. A streaming pane follows its end as fragments arrive; a
        finished one opens at the top, or if long (a reopened session's) folded to its end
        as a streamed one ends, unless `top`."""
        async with self._lock:
            await self._stop_stream()
            self._note, self._dropped, self._held, self.folded = "", 0, [], None
            self.drawn = len(text)
            if streaming:
                if text.count("\n") >= LIVE_BLOCKS or len(text) > LIVE_CHARS:
                    text, self._dropped = await asyncio.to_thread(last_blocks, text, LIVE_BLOCKS,
                                                                  LIVE_CHARS)
                self._room = room_after(text)
                self._note = earlier_note(self._dropped) if self._dropped else ""
                self._run = len(text) - text.rfind("\n\n") - 2 if "\n\n" in text else len(text)
                await self.document.update(self._note + text)
                self._stream = Markdown.get_stream(self.document)
                self.follow()
            else:
                tail = text if top or len(text) <= KEEP_CHARS else \
                    await asyncio.to_thread(tail_of, text, MOST_BLOCKS, KEEP_CHARS)
                if len(tail) < len(text):
                    self.anchor()
                    await self._fold(text, tail)
                    return
                await self.document.update(text or empty)
                self.anchor(False)
                self.scroll_home(animate=False, immediate=True)
                self._update_cue()

    async def finish(self, text: str, empty: str = NOTHING, top: bool = False) -> None:
        """The stream ended. If the streamed blocks are what a full render would give (the
        usual case), keep them; otherwise one full render cleans them up, without moving a
        reader who scrolled up. Re-rendering a long answer costs hundreds of milliseconds on
        the UI thread, so it is worth checking first; the check parses off that thread.
        `empty`: what to say when there is no text; `top`: open at the top (the Reflection
        pane's corrections at a glance lead it)."""
        async with self._lock:
            await self._stop_stream()
            self._note, self._held = "", []
            self.drawn = len(text)
            if self._dropped and not top:
                tail = await asyncio.to_thread(tail_of, text, MOST_BLOCKS, KEEP_CHARS)
                if len(tail) < len(text):
                    await self._fold(text, tail)
                    return
            if text and self.document.source == text and await asyncio.to_thread(
                    _same_blocks, text, self._block_ranges()):
                if top:
                    self.anchor(False)
                    self.scroll_home(animate=False, immediate=True)
                self._update_cue()
                return
            y = self.scroll_y
            await self.document.update(text or empty)
            if top:
                self.anchor(False)
                self.scroll_home(animate=False, immediate=True)
            elif not self.following:
                self.scroll_to(y=y, animate=False, immediate=True)
            self._update_cue()

    async def _fold(self, text: str, tail: str) -> None:
        """Draw only the end of a long finished text; the whole waits for Home."""
        self.folded, self.drawn = text, len(tail)
        following = self.following
        await self.document.update(folded_note(len(text) - len(tail)) + tail)
        if following:
            self.scroll_end(animate=False, immediate=True)
        self._update_cue()

    async def unfold(self) -> None:
        """Draw the whole text of a folded pane, and show its top."""
        async with self._lock:
            if self.folded is None:
                return
            text, self.folded, self.drawn = self.folded, None, len(self.folded)
            await self.document.update(text)
            self.anchor(False)
            self.scroll_home(animate=False, immediate=True)
            self._update_cue()

    async def action_top(self) -> None:
        if self.folded is not None:
            await self.unfold()
        else:
            self.scroll_home(animate=False)

    def _block_ranges(self) -> list[tuple[int, int]]:
        return [tuple(block.source_range) for block in self.document.children
                if isinstance(block, MarkdownBlock)]

    async def write(self, fragment: str) -> None:
        """Append streamed text: held while the reader is scrolled up; the oldest blocks
        dropped from view when there are more than `MOST_BLOCKS`."""
        async with self._lock:
            if self._stream is None:
                return
            if not self.following:
                self._held.append(fragment)
                self._update_cue()
                return
            await self._stream.write(self._broken(fragment))
            self.drawn += len(fragment)
            self._room -= len(fragment)
            if len(self.document.children) > MOST_BLOCKS or self._room < 0:
                await self._drop_oldest()
            self._update_cue()

    def _broken(self, fragment: str) -> str:
        """`fragment`, with a blank line at its last space or line end if the block it grows
        has passed `LONG_BLOCK` characters (re-parsing and drawing a block costs its length)."""
        at = fragment.rfind("\n\n")
        if at >= 0:
            self._run = len(fragment) - at - 2
            return fragment
        self._run += len(fragment)
        if self._run <= LONG_BLOCK:
            return fragment
        at = max(fragment.rfind(" "), fragment.rfind("\n"))
        self._run = len(fragment) - at - 1 if at >= 0 else 0
        return fragment[:at] + "\n\n" + fragment[at + 1:] if at >= 0 else fragment + "\n\n"

    async def _drop_oldest(self) -> None:
        """Draw only the last `LIVE_BLOCKS` blocks (at most `LIVE_CHARS` characters) again,
        under the note of those before."""
        await self._stop_stream()
        release_removed_widgets_lines()  # the blocks about to go
        live, dropped = await asyncio.to_thread(
            last_blocks, self.document.source[len(self._note):], LIVE_BLOCKS, LIVE_CHARS)
        self._room = room_after(live)
        self._dropped += dropped
        self._note = earlier_note(self._dropped)
        await self.document.update(self._note + live)
        self._stream = Markdown.get_stream(self.document)
        self.scroll_end(animate=False, immediate=True)

    async def _release_held(self) -> None:
        held, self._held = "".join(self._held), []
        if held:
            await self.write(held)

    async def _stop_stream(self) -> None:
        if self._stream is not None:
            await self._stream.stop()
            self._stream = None

    def follow(self) -> None:
        self.anchor()
        self.scroll_end(animate=False, immediate=True)
        self._update_cue()
        if self._held:
            self.call_later(self._release_held)

    def action_follow(self) -> None:
        self.follow()

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        self._update_cue()
        if self._held and self.following:  # the reader came back to the end
            self.call_later(self._release_held)

    def on_resize(self) -> None:
        self._update_cue()

    def _update_cue(self) -> None:
        behind = self.max_scroll_y - self.scroll_y >= 1 or bool(self._held)
        self.border_subtitle = CUE if behind and not self.following else ""
