"""Feeding the panes: the turn in view drawn whole, and a streaming answer's batches added as
they come, held back while the user types.

Pane updates wait `TYPING_HOLD_S` after a keystroke (at most `TYPING_HOLD_MAX_S` in all), so the
keystroke is painted in a cheap frame of its own instead of waiting behind the panes'."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

from textual.app import App
from textual.timer import Timer

from reflectchat.chat.conversation import Turn
from reflectchat.config import UIConfig
from reflectchat.demo.answers import STARTERS
from reflectchat.models.choice import ModelChoice
from reflectchat.reflection.events import Channel, EventKind
from reflectchat.ui.messages import StreamBatch
from reflectchat.ui.pane_text import PaneText
from reflectchat.ui.widgets.channel_pane import ChannelPane
from reflectchat.ui.widgets.raw_view import RawView
from reflectchat.ui.widgets.status_bar import Status, StatusBar
from reflectchat.untrusted import visible

HINTS = {
    Channel.THINKING: "*The model's reasoning appears here as it thinks.*",
    Channel.REFLECTION: "*Its self-corrections appear here, numbered.*",
    Channel.OUTPUT: "*The answer appears here. Type a question below and press Enter.*",
}
STARTER_LINK = "#starter-"
TYPING_HOLD_S = 0.06  # pane updates wait this long after a keystroke, so typing paints first,
TYPING_HOLD_MAX_S = 0.25  # but never longer than this


class PaneFeedPart(App[None]):
    choice: ModelChoice
    _panes: dict[int, PaneText]  # id(turn) -> its panes' text
    _viewed: Turn | None
    _status: Status
    ui_config: UIConfig
    _pane: Callable[[Channel], ChannelPane]  # the layout's
    _show_column: Callable[[str], None]
    _status_for: Callable[[Turn | None], Status]  # the answering part's

    def _init_pane_feed(self) -> None:
        self._pending: dict[Channel, list[str]] = {c: [] for c in Channel}  # not yet shown
        self._pending_raw = ""
        self._pending_since: float | None = None
        self._last_typed = 0.0
        self._flush_timer: Timer | None = None

    async def _view(self, turn: Turn | None) -> None:
        self._viewed = turn
        self._drop_pending()
        if turn is None:
            for channel in Channel:
                await self._pane(channel).show(self._hint(channel), streaming=False)
            self.query_one(RawView).clear()
            return
        await self._render_turn(turn)
        if turn.finished:
            self.query_one(StatusBar).show(self._status_for(turn))

    def _hint(self, channel: Channel) -> str:
        """What an empty pane says; for the demo, the output pane offers prompts to start."""
        if channel is not Channel.OUTPUT or not self.choice.is_demo:
            return HINTS[channel]
        starters = "\n".join(f"{n}. [{visible(prompt)}]({STARTER_LINK}{n})"
                              for n, prompt in enumerate(STARTERS, 1))
        return ("*This is the demo model: it replays recorded answers. Type a question below, "
                "or start with one of these: click it, or type its number and press Enter.*"
                f"\n\n{starters}")

    async def _render_turn(self, turn: Turn) -> None:
        panes = self._panes[id(turn)]
        for channel in Channel:
            await self._pane(channel).show(panes.pane(channel), streaming=not turn.finished)
        self._refresh_raw()

    def _refresh_raw(self) -> None:
        log = self.query_one(RawView)
        log.clear()
        if self._viewed is not None:
            log.write(visible(self._panes[id(self._viewed)].raw))

    async def on_stream_batch(self, batch: StreamBatch) -> None:
        panes = self._panes.get(id(batch.turn))
        if panes is None:
            return
        fragments: dict[Channel, list[str]] = {c: [] for c in Channel}
        reclassified = False
        for event in batch.events:
            reclassified |= event.kind is EventKind.RECLASSIFY
            for channel, text in panes.apply(event).items():
                fragments[channel].append(text)
        panes.raw += batch.raw
        if reclassified and batch.turn is self._viewed:  # text moved between panes
            self._drop_pending()
            await self._render_turn(batch.turn)
            self._show_column("output" if panes.text[Channel.OUTPUT] else "thinking")
        elif batch.turn is self._viewed:
            for channel, parts in fragments.items():
                self._pending[channel] += parts
            self._pending_raw += batch.raw
            await self._flush_when_not_typing()
        tokens = batch.completion_tokens
        speed = None
        if batch.first_token_s is not None and batch.elapsed_s > batch.first_token_s and tokens > 1:
            speed = (tokens - 1) / (batch.elapsed_s - batch.first_token_s)
        self._status = replace(
            self._status, tokens_per_second=speed, first_token_s=batch.first_token_s,
            facts=batch.facts, ctx_used=batch.prompt_tokens + tokens,
        )
        self.query_one(StatusBar).show(self._status)

    def on_text_area_changed(self) -> None:
        self._last_typed = time.monotonic()

    async def _flush_when_not_typing(self) -> None:
        """Show the pending fragments, unless a key was typed a moment ago: then wait a
        little (at most TYPING_HOLD_MAX_S)."""
        if not any(self._pending.values()) and not self._pending_raw:
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
        await self._flush_panes()

    async def _flush_after_wait(self) -> None:
        self._flush_timer = None
        await self._flush_when_not_typing()

    async def _flush_panes(self) -> None:
        pending, self._pending = self._pending, {c: [] for c in Channel}
        raw, self._pending_raw = self._pending_raw, ""
        self._pending_since = None
        if self._flush_timer is not None:
            self._flush_timer.stop()
            self._flush_timer = None
        for channel, parts in pending.items():
            if parts:
                await self._pane(channel).write("".join(parts))
        if pending[Channel.OUTPUT]:
            self._show_column("output")
        if self.ui_config.raw_view and raw:
            self.query_one(RawView).write(visible(raw))

    def _drop_pending(self) -> None:
        """The panes are being redrawn from the whole text: what was pending is in it."""
        self._pending = {c: [] for c in Channel}
        self._pending_raw = ""
        self._pending_since = None
        if self._flush_timer is not None:
            self._flush_timer.stop()
            self._flush_timer = None

    async def _finish_panes(self, panes: PaneText) -> None:
        await self._flush_panes()
        for channel in Channel:
            await self._pane(channel).finish(panes.pane(channel))
