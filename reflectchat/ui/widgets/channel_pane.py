"""One pane (thinking, reflection or output): Markdown that streams and follows the newest text.

Fragments go through Textual's `MarkdownStream`, which batches them; at the end, a full render
cleans up any block the stream left different from a full parse. While the user has not
scrolled up, the pane is anchored to its end; scrolling up pauses that, and End or the
"latest" cue resumes it.
"""

from __future__ import annotations

import asyncio

from markdown_it import MarkdownIt
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Markdown
from textual.widgets._markdown import MarkdownBlock, MarkdownStream

NOTHING = "*none in this answer*"
STOPPED_EARLY = "*stopped before answering*"


def literal_markdown() -> MarkdownIt:
    """Markdown without raw HTML: a model's `<b>` or `<div>` is shown as text, not dropped."""
    return MarkdownIt("gfm-like", {"html": False})


def _same_blocks(text: str, ranges: list[tuple[int, int]]) -> bool:
    """Whether a full parse of `text` gives top-level blocks over exactly these line ranges."""
    blocks = [tuple(t.map) for t in literal_markdown().parse(text)
              if t.level == 0 and t.nesting >= 0 and t.map is not None]
    return blocks == ranges


CUE = "↓ latest (End)"  # in the bottom border, where it covers no text


class ChannelPane(VerticalScroll):
    BINDINGS = [Binding("end", "follow", "Latest", show=False)]

    def __init__(self, title: str, *, id: str) -> None:
        super().__init__(id=id, classes="pane")
        self.border_title = title
        self._stream: MarkdownStream | None = None
        self.document = Markdown(parser_factory=literal_markdown, open_links=False)

    def compose(self) -> ComposeResult:
        yield self.document

    @property
    def cue_shown(self) -> bool:
        """The "↓ latest" cue is in the bottom border: newer text is below the view."""
        return self.border_subtitle == CUE

    def on_click(self, event: events.Click) -> None:
        """A click on the bottom border while the cue is there follows the newest text."""
        if self.cue_shown and event.y == self.outer_size.height - 1:
            event.stop()
            self.follow()

    @property
    def following(self) -> bool:
        # Textual keeps an anchored pane at its end until the user scrolls ("releases" it).
        return self.is_anchored and not self._anchor_released

    async def show(self, text: str, streaming: bool, empty: str = NOTHING) -> None:
        """Replace the pane's text. A streaming pane follows its end as fragments arrive; a
        finished one opens at the top."""
        await self._stop_stream()
        await self.document.update(text if text or streaming else empty)
        if streaming:
            self._stream = Markdown.get_stream(self.document)
            self.follow()
        else:
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
        await self._stop_stream()
        if text and self.document.source == text and await asyncio.to_thread(
                _same_blocks, text, self._block_ranges()):
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

    def _block_ranges(self) -> list[tuple[int, int]]:
        return [tuple(block.source_range) for block in self.document.children
                if isinstance(block, MarkdownBlock)]

    async def write(self, fragment: str) -> None:
        if self._stream is not None:
            await self._stream.write(fragment)
            self._update_cue()

    async def _stop_stream(self) -> None:
        if self._stream is not None:
            await self._stream.stop()
            self._stream = None

    def follow(self) -> None:
        self.anchor()
        self.scroll_end(animate=False, immediate=True)
        self._update_cue()

    def action_follow(self) -> None:
        self.follow()

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        self._update_cue()

    def on_resize(self) -> None:
        self._update_cue()

    def _update_cue(self) -> None:
        behind = self.max_scroll_y - self.scroll_y >= 1
        self.border_subtitle = CUE if behind and not self.following else ""
