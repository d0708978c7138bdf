"""One pane (thinking, reflection or output): Markdown that streams and follows the newest text.

Fragments go through Textual's `MarkdownStream`, which batches them, and one full render at the
end cleans up block state such as code fences. While the user has not scrolled up, the pane is
anchored to its end; scrolling up pauses that, and End or the "latest" cue resumes it.
"""

from __future__ import annotations

from markdown_it import MarkdownIt
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Markdown, Static
from textual.widgets._markdown import MarkdownStream

NOTHING = "*none in this answer*"


def literal_markdown() -> MarkdownIt:
    """Markdown without raw HTML: a model's `<b>` or `<div>` is shown as text, not dropped."""
    return MarkdownIt("gfm-like", {"html": False})


class LatestCue(Static):
    def on_click(self) -> None:
        pane = self.parent
        if isinstance(pane, ChannelPane):
            pane.follow()


class ChannelPane(VerticalScroll):
    BINDINGS = [Binding("end", "follow", "Latest", show=False)]

    def __init__(self, title: str, *, id: str) -> None:
        super().__init__(id=id, classes="pane")
        self.border_title = title
        self._stream: MarkdownStream | None = None
        self.document = Markdown(parser_factory=literal_markdown, open_links=False)
        self._cue = LatestCue("↓ latest (End)", classes="latest-cue")

    def compose(self) -> ComposeResult:
        yield self.document
        yield self._cue

    @property
    def following(self) -> bool:
        # Textual keeps an anchored pane at its end until the user scrolls ("releases" it).
        return self.is_anchored and not self._anchor_released

    async def show(self, text: str, streaming: bool) -> None:
        """Replace the pane's text. A streaming pane follows its end as fragments arrive; a
        finished one opens at the top."""
        await self._stop_stream()
        await self.document.update(text if text or streaming else NOTHING)
        if streaming:
            self._stream = Markdown.get_stream(self.document)
            self.follow()
        else:
            self.anchor(False)
            self.scroll_home(animate=False, immediate=True)
            self._update_cue()

    async def finish(self, text: str) -> None:
        """The stream ended: one full render cleans up partial blocks (an open code fence)
        without moving a reader who scrolled up."""
        await self._stop_stream()
        y = self.scroll_y
        await self.document.update(text or NOTHING)
        if not self.following:
            self.scroll_to(y=y, animate=False, immediate=True)
        self._update_cue()

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
        self._cue.display = behind and not self.following
