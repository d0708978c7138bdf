"""The answer in view: the thinking, reflection and output panes and the raw view, with the
panes' text of every turn seen. It takes a streaming answer's batches itself (the worker posts
them here) and tells the columns around it which pane to bring forward.

Pane updates wait `TYPING_HOLD_S` after a keystroke in the prompt (at most `TYPING_HOLD_MAX_S`
in all), so the keystroke is painted in a cheap frame of its own instead of waiting behind the
panes'."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.css.query import NoMatches
from textual.message import Message
from textual.reactive import reactive
from textual.timer import Timer
from textual.widgets import Markdown
from textual.widgets.markdown import MarkdownBlock

from reflectchat.chat.conversation import Turn
from reflectchat.demo.answers import STARTERS
from reflectchat.engine.base import FinishReason
from reflectchat.reflection.answer import Answer
from reflectchat.reflection.corrections import corrections_of
from reflectchat.reflection.events import Channel
from reflectchat.store.records import MARK_END, MARK_START, SearchHit
from reflectchat.ui.messages import StreamBatch, StreamFinished
from reflectchat.ui.pane_text import REFLECTION_LINK, THINKING_LINK, panes
from reflectchat.ui.widgets.channel_pane import (
    NOTHING,
    STOPPED_EARLY,
    ChannelPane,
    literal_markdown,
)
from reflectchat.ui.widgets.raw_view import RawView
from reflectchat.untrusted import visible

HINTS = {
    Channel.THINKING: "*The model's reasoning appears here as it thinks.*",
    Channel.REFLECTION: "*Its self-corrections appear here, numbered.*",
    Channel.OUTPUT: "*The answer appears here. Type a question below and press Enter.*",
}
STARTER_LINK = "#starter-"
TYPING_HOLD_S = 0.06  # pane updates wait this long after a keystroke, so typing paints first,
TYPING_HOLD_MAX_S = 0.25  # but never longer than this


@dataclass
class TurnPanes:
    """One turn's panes as drawn so far (the turn is held, so its `id` stays its own), and
    while it streams, what its batches brought of it: the UI reads a streaming answer from
    these copies, never from the answer the worker is still changing."""

    turn: Turn
    text: dict[Channel, str] = field(default_factory=lambda: {c: "" for c in Channel})
    raw: list[str] = field(default_factory=list)  # the raw text's pieces, batch by batch
    output: str = ""
    reflections: int = 0


def stored_panes(turn: Turn) -> dict[Channel, str]:
    """The panes of an answer that did not stream here (a stored session): its raw text is
    read again once, for where each reflection came."""
    answer = turn.answer
    if len(answer.marks) != len(answer.reflections):
        answer = Answer.from_raw(answer.raw, turn.tag_format, turn.prefilled, answer.special)
    return panes(answer, corrections_of(answer))


class AnswerView(Horizontal):
    demo = reactive(False)  # the demo model: the empty output pane offers its starters
    raw_shown = reactive(False)  # the raw view is on: keep it filled

    @dataclass
    class Reveal(Message):
        """Show `channel`'s pane (turning it on if it is off) and scroll it to `text`."""

        channel: Channel
        text: str | None = None
        any_case: bool = False
        switch_tab: bool = True

    class Wants(Message):
        """A pane has something new to see: bring this column forward (in tabs mode)."""

        def __init__(self, column: str) -> None:
            super().__init__()
            self.column = column

    def __init__(self) -> None:
        super().__init__(id="answer")
        self.viewed: Turn | None = None
        self._turns: dict[int, TurnPanes] = {}
        self._pending: dict[Channel, list[str]] = {c: [] for c in Channel}  # not yet shown
        self._pending_raw = ""
        self._pending_since: float | None = None
        self._last_typed = 0.0
        self._flush_timer: Timer | None = None

    def compose(self) -> ComposeResult:
        yield ChannelPane("Thinking", id="thinking")
        yield ChannelPane("Reflection", id="reflection")
        yield ChannelPane("Output", id="output")
        yield RawView()

    def pane(self, channel: Channel) -> ChannelPane:
        return self.query_one(f"#{channel.value}", ChannelPane)

    @property
    def waiting(self) -> bool:
        """Fragments are held back (the user is typing)."""
        return any(self._pending.values()) or bool(self._pending_raw)

    def shown_text(self, turn: Turn) -> dict[Channel, str]:
        """The panes' Markdown for `turn` as this view has it."""
        return dict(self._panes_of(turn).text)

    def _panes_of(self, turn: Turn) -> TurnPanes:
        panes_ = self._turns.get(id(turn))
        if panes_ is None:
            panes_ = self._turns[id(turn)] = TurnPanes(turn)
            if turn.finished:
                panes_.text = stored_panes(turn)
        return panes_

    def forget(self, turn: Turn | None = None) -> None:
        """Drop one turn's panes (it is answered again), or every turn's (another chat)."""
        if turn is None:
            self._turns.clear()
        else:
            self._turns.pop(id(turn), None)

    async def show_turn(self, turn: Turn | None) -> None:
        """Draw `turn` whole (None: the hints of an empty chat)."""
        self.viewed = turn
        self._drop_pending()
        if turn is None:
            for channel in Channel:
                await self.pane(channel).show(self._hint(channel), streaming=False)
            self.query_one(RawView).clear()
            return
        if turn.finished and id(turn) not in self._turns:  # a stored answer: laid out on a
            text = await asyncio.to_thread(stored_panes, turn)  # thread, a long one takes time
            self._turns.setdefault(id(turn), TurnPanes(turn, text))
            if self.viewed is not turn:
                return  # another turn was asked for meanwhile
        text = self._panes_of(turn).text
        for channel in Channel:
            await self.pane(channel).show(text[channel], streaming=not turn.finished,
                                          empty=_empty(turn, channel),
                                          top=channel is Channel.REFLECTION)
        if self.raw_shown:  # else drawn when the raw view is switched on
            self._refresh_raw()

    def _hint(self, channel: Channel) -> str:
        """What an empty pane says; for the demo, the output pane offers prompts to start."""
        if channel is not Channel.OUTPUT or not self.demo:
            return HINTS[channel]
        starters = "\n".join(f"{n}. [{visible(prompt)}]({STARTER_LINK}{n})"
                              for n, prompt in enumerate(STARTERS, 1))
        return ("*This is the demo model: it replays recorded answers. Type a question below, "
                "or start with one of these: click it, or type its number and press Enter.*"
                f"\n\n{starters}")

    async def watch_demo(self) -> None:
        if self.viewed is None and self.is_mounted:
            await self.show_turn(None)  # the hints offer the demo's starters, or no longer

    def watch_raw_shown(self, shown: bool) -> None:
        if shown:
            self._refresh_raw()

    def _refresh_raw(self) -> None:
        log = self.query_one(RawView)
        log.clear()
        turn = self.viewed
        if turn is not None:
            log.write(visible(self.raw_of(turn)))

    def raw_of(self, turn: Turn) -> str:
        """`turn`'s raw model text: while it streams, as far as its batches brought it."""
        return turn.answer.raw if turn.finished else "".join(self._panes_of(turn).raw)

    def output_of(self, turn: Turn) -> str:
        """`turn`'s output: while it streams, as its last batch had it."""
        return turn.answer.output if turn.finished else self._panes_of(turn).output

    def output_in_view(self) -> str:
        return self.output_of(self.viewed) if self.viewed is not None else ""

    def code_blocks(self) -> list[str]:
        """The code blocks of the output in view."""
        parsed = literal_markdown().parse(self.output_in_view())
        return [t.content for t in parsed if t.type == "fence"]

    def answered(self, turn: Turn) -> None:
        """`turn` is finished (its answer is the UI's to read now): the copies its batches
        brought are dropped, so a long answer is not held twice."""
        drawn = self._turns.get(id(turn))
        if drawn is not None and turn.finished:
            drawn.raw.clear()
            drawn.output = ""

    def reflections_in_view(self) -> int:
        turn = self.viewed
        if turn is None:
            return 0
        return turn.answer.reflection_count if turn.finished else \
            self._panes_of(turn).reflections

    # -- streaming --------------------------------------------------------------------------

    async def on_stream_batch(self, batch: StreamBatch) -> None:
        """A batch of the streaming answer (it goes on up to the app, for the status bar)."""
        drawn = self._turns.get(id(batch.turn))
        if drawn is None:
            return  # a turn this view no longer holds (a new chat started)
        if batch.whole:
            drawn.text = dict(batch.panes)
        else:
            for channel, grown in batch.panes.items():
                drawn.text[channel] += grown
        drawn.raw.append(batch.raw)
        drawn.output, drawn.reflections = batch.output, batch.reflections
        if batch.turn is not self.viewed:
            return
        if batch.whole:  # text moved between panes
            await self.show_turn(batch.turn)
            self.post_message(self.Wants("output" if drawn.text[Channel.OUTPUT] else "thinking"))
            return
        for channel, grown in batch.panes.items():
            if grown:
                self._pending[channel].append(grown)
        self._pending_raw += batch.raw
        await self._flush_when_not_typing()

    async def on_stream_finished(self, message: StreamFinished) -> None:
        drawn = self._turns.get(id(message.turn))
        if drawn is None:
            return
        drawn.text = message.panes
        if message.turn is self.viewed:
            # In a worker, so keys and scrolling are handled while the panes re-render.
            self.run_worker(self._finish(message.turn, message.panes), group="render")

    def typed(self) -> None:
        """A key was typed in the prompt: hold pane updates a moment."""
        self._last_typed = time.monotonic()

    async def _flush_when_not_typing(self) -> None:
        """Show the pending fragments, unless a key was typed a moment ago: then wait a
        little (at most TYPING_HOLD_MAX_S)."""
        if not self.waiting:
            return
        now = time.monotonic()
        if self._pending_since is None:
            self._pending_since = now
        wait = min(self._last_typed + TYPING_HOLD_S,
                   self._pending_since + TYPING_HOLD_MAX_S) - now
        if wait > 0:
            if self._flush_timer is None:
                self._flush_timer = self.set_timer(wait, self._flush_after_wait)
            return
        await self._flush()

    async def _flush_after_wait(self) -> None:
        self._flush_timer = None
        await self._flush_when_not_typing()

    async def _flush(self) -> None:
        pending, raw = self._pending, self._pending_raw
        self._drop_pending()
        for channel, parts in pending.items():
            if parts:
                await self.pane(channel).write("".join(parts))
        if pending[Channel.OUTPUT]:
            self.post_message(self.Wants("output"))
        if self.raw_shown and raw:
            self.query_one(RawView).write(visible(raw))

    def _drop_pending(self) -> None:
        """Nothing is held back any more (shown, or the panes are drawn whole)."""
        self._pending = {c: [] for c in Channel}
        self._pending_raw = ""
        self._pending_since = None
        if self._flush_timer is not None:
            self._flush_timer.stop()
            self._flush_timer = None

    async def _finish(self, turn: Turn, text: dict[Channel, str]) -> None:
        """The answer is whole: each pane drawn from its whole text; the Reflection pane opens
        at its top, where the corrections at a glance are."""
        try:
            await self._flush()
            for channel in Channel:
                await self.pane(channel).finish(
                    text[channel], _empty(turn, channel),
                    top=channel is Channel.REFLECTION and bool(turn.answer.reflection_count))
        except NoMatches:  # the app closed while a long answer was drawn: nothing to draw on
            return

    # -- finding a place ----------------------------------------------------------------------

    def on_markdown_link_clicked(self, event: Markdown.LinkClicked) -> None:
        """A reflection's link and its marker in the thinking lead to each other; a web link
        opens in the browser. (The demo's starter links go on to the chat.)"""
        href = event.href
        if href.startswith(REFLECTION_LINK):
            event.stop()
            self.go_to_reflection(int(href.removeprefix(REFLECTION_LINK) or 0))
        elif href.startswith(THINKING_LINK):
            event.stop()
            self._ask(self.Reveal, Channel.THINKING,
                      f"({REFLECTION_LINK}{href.removeprefix(THINKING_LINK)})")
        elif href.startswith(("https://", "http://")):
            event.stop()
            self.app.open_url(href)

    def show_hit(self, hit: SearchHit) -> None:
        """Bring a search hit's words into view in the turn shown: its reflection beside its
        place in the thinking, its pane scrolled to the words, or the chat for a prompt."""
        matched = hit.snippet.partition(MARK_START)[2].partition(MARK_END)[0]
        if hit.reflection:
            self.go_to_reflection(hit.reflection)
        elif hit.channel == "thinking":
            self._ask(self.Reveal, Channel.THINKING, matched, any_case=True)
        elif hit.channel == "output":
            self._ask(self.Wants, "output")
            self.scroll_to_text(Channel.OUTPUT, matched, any_case=True)
        else:
            self._ask(self.Wants, "conversation")

    def go_to_reflection(self, n: int) -> None:
        """Reveal reflection `n` and the place in the thinking where it occurred."""
        self._ask(self.Reveal, Channel.REFLECTION, f"({THINKING_LINK}{n})")
        self._ask(self.Reveal, Channel.THINKING, f"({REFLECTION_LINK}{n})", switch_tab=False)

    def _ask(self, kind: type[Message], *args: object, **kwargs: object) -> None:
        """Post a message up from this view whoever calls: made in this view's own turn, so
        it bubbles past the caller (Textual stops a message at the widget that sent it)."""
        self.call_later(lambda: self.post_message(kind(*args, **kwargs)))

    def scroll_to_text(self, channel: Channel, text: str, any_case: bool = False) -> None:
        """Scroll `channel`'s pane to the first block whose Markdown holds `text`; a folded
        pane is drawn whole first (the text may be in what is folded)."""
        pane = self.pane(channel)
        if pane.folded is not None:
            async def unfolded() -> None:
                await pane.unfold()
                self.scroll_to_text(channel, text, any_case)
            self.call_later(unfolded)
            return
        wanted = text.casefold() if any_case else text
        for block in pane.document.query(MarkdownBlock):
            source = block.source or ""
            if wanted in (source.casefold() if any_case else source):
                pane.release_anchor()
                self.call_after_refresh(block.scroll_visible, top=True, animate=False)
                break


def _empty(turn: Turn, channel: Channel) -> str:
    """What an empty pane of `turn` says: an answer stopped before its output began says so."""
    stopped = turn.stats is not None and turn.stats.finish_reason in (
        FinishReason.CANCELLED, FinishReason.LOOP, FinishReason.INTERRUPTED)
    return STOPPED_EARLY if stopped and channel is Channel.OUTPUT else NOTHING
