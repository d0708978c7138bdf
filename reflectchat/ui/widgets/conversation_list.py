"""The conversation: each turn's prompt and the start of its output, as Markdown like the panes
(raw HTML and control characters shown literally), never the model's tags: an answer without
output shows the start of its thinking. Selecting a turn shows its panes."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.content import Content
from textual.widgets import ListItem, ListView, Markdown, Static

from reflectchat.chat.conversation import Turn
from reflectchat.engine.base import FinishReason
from reflectchat.ui.widgets.channel_pane import literal_markdown
from reflectchat.untrusted import visible

PREVIEW_LINES = 4
# turns listed at most: a session of thousands of turns opens at once in bounded memory; its
# earlier turns stay in the session (`sessions show` prints them all). Each listed turn mounts
# two Markdown widgets: 300 took 5 s more to open than 100 on a 2-core VM.
MAX_LISTED = 100


def _preview(text: str) -> str:
    lines = [line for line in visible(text).strip().splitlines() if line.strip()]
    shown = "\n".join(lines[:PREVIEW_LINES])
    return shown + (" …" if len(lines) > PREVIEW_LINES else "")


def _markdown(text: str, classes: str) -> Markdown:
    return Markdown(text, classes=classes, parser_factory=literal_markdown, open_links=False)


class TurnItem(ListItem):
    """A turn in the list. While its answer streams it shows no preview and reads nothing of
    the answer (a worker is changing it): the note says "thinking…" until `answering()` says
    the output began, and the preview comes when the answer ends (`refresh_reply`)."""

    def __init__(self, turn: Turn) -> None:
        super().__init__(classes="turn")
        self.turn = turn
        self._answering = False

    def compose(self) -> ComposeResult:
        yield _markdown(_preview(self.turn.prompt), "user-text")
        yield _markdown(self._reply(), "reply-text")
        yield Static(self._note(), classes="reply-note")

    def _reply(self) -> str:
        if not self.turn.finished:
            return ""
        answer = self.turn.answer
        if answer.output.strip():
            return _preview(answer.output)
        if answer.thinking.strip():
            return "*thinking:* " + _preview(answer.thinking)
        return ""

    def _note(self) -> Content:
        stats = self.turn.stats
        if stats is None:  # streaming: "answering…" once the output has begun
            doing = "answering…" if self._answering else "thinking…"
            return Content.styled(doing, "italic $text-muted")
        if stats.finish_reason is FinishReason.INTERRUPTED:
            return Content.styled("⚠ interrupted (the app closed mid-answer)", "$warning")
        if stats.finish_reason is FinishReason.CANCELLED:
            return Content.styled("⏹ stopped", "$warning")
        if stats.finish_reason is FinishReason.LOOP:
            return Content.styled("⏹ stopped: the model was repeating itself", "$warning")
        if stats.error:
            return Content.styled(f"✗ {visible(stats.error)}", "$error")
        if stats.finish_reason is FinishReason.LENGTH:
            return Content.styled("… cut at the token limit", "$warning")
        if self.turn.comparison is not None:
            mark = {"a": "A better", "b": "B better", "tie": "a tie"}.get(
                self.turn.comparison.choice or "", "not marked (F10)")
            return Content.styled(f"⇄ compared: {mark}", "$text-muted")
        return Content("")

    def refresh_reply(self) -> None:
        self.query_one(".reply-text", Markdown).update(self._reply())
        self.refresh_note()

    def refresh_note(self) -> None:
        self.query_one(".reply-note", Static).update(self._note())

    def answering(self, output_begun: bool) -> None:
        """Whether the streaming answer's output has begun (it can end again: the output so
        far may turn out to be thinking)."""
        if output_begun != self._answering:
            self._answering = output_begun
            self.refresh_note()


class ConversationList(ListView):
    def __init__(self) -> None:
        super().__init__(id="conversation")
        self.border_title = "Conversation"

    def follow(self) -> None:
        """Show the newest turn: select it, and keep the list at its end (once the turns
        overflow it: an anchored list shorter than its view would sink to the bottom)."""
        if len(self):
            self.index = len(self) - 1
        self._refollow()

    def on_resize(self) -> None:
        self._refollow()

    def watch_virtual_size(self) -> None:  # the items' height (their Markdown lays out)
        self.call_after_refresh(self._refollow)

    def _refollow(self) -> None:
        overflows = self.virtual_size.height > self.scrollable_content_region.height
        if overflows and not self.is_anchored:
            self.anchor()  # until the user scrolls up
        elif not overflows and self.is_anchored:
            self.anchor(False)

    def index_of(self, turn: Turn) -> int | None:
        """The list position of `turn` (None: not listed)."""
        for i, child in enumerate(self.children):
            if isinstance(child, TurnItem) and child.turn is turn:
                return i
        return None

    def item_for(self, turn: Turn) -> TurnItem | None:
        for item in reversed(self.children):  # newest first: it is most often the one asked
            if isinstance(item, TurnItem) and item.turn is turn:
                return item
        return None


def earlier_note(hidden: int, session_id: int | None) -> ListItem:
    """The first line of a list that leaves out the oldest turns, saying so."""
    where = f"`reflectchat sessions show {session_id}`" if session_id else "the export"
    text = (f"… {hidden:,} earlier turn{'s' * (hidden != 1)} of this session are not listed "
            f"here; {where} shows them all.")
    return ListItem(Static(Content.styled(text, "italic $text-muted")), classes="earlier",
                    disabled=True)
