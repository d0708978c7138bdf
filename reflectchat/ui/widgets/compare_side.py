"""One side of a comparison: its setup, its figures over its thinking, reflection and output
panes (stacked, the reasoning panes a few lines high, each scrolling), the figures: tokens per
channel, time to output, speed, reflections and how it ended. It takes its answer's batches
itself (the worker posts them here) and lets the end bubble up to the screen."""

from __future__ import annotations

import asyncio

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import Static

from reflectchat.chat.comparison import Setup
from reflectchat.chat.conversation import Turn
from reflectchat.chat.transcript import finish_note
from reflectchat.engine.base import GenerationStats
from reflectchat.reflection.events import Channel
from reflectchat.reflection.facts import ChannelFacts, duration_text
from reflectchat.ui.messages import StreamBatch, StreamFinished
from reflectchat.ui.widgets.answer_view import stored_panes
from reflectchat.ui.widgets.channel_pane import NOTHING, ChannelPane
from reflectchat.untrusted import visible

TITLES = {Channel.THINKING: "Thinking", Channel.REFLECTION: "Reflection",
          Channel.OUTPUT: "Output"}


def figures(facts: ChannelFacts, stats: GenerationStats | None, reflections: int,
            speed: float | None = None) -> str:
    """"thinking 812 · reflection 40 · output 120 tokens · output after 4.1 s · 21.3 tok/s ·
    2 reflections · ended: stop"."""
    tokens = " · ".join(f"{c.value} {facts.tokens[c.value]:,}" for c in Channel)
    parts = [f"{tokens} tokens"]
    if facts.first_output_s is not None:
        parts.append(f"output after {duration_text(facts.first_output_s)}")
    speed = stats.tokens_per_second if stats is not None and stats.tokens_per_second else speed
    if speed:
        parts.append(f"{speed:.1f} tok/s")
    parts.append(f"{reflections} reflection{'s' * (reflections != 1)}")
    if stats is not None:
        parts.append(f"ended: {finish_note(stats) or stats.finish_reason.value}")
    return " · ".join(parts)


class CompareSide(Vertical):
    def __init__(self, side: str, setup: Setup, turn: Turn) -> None:
        super().__init__(id=f"side-{side}", classes="compare-side")
        self.side, self.setup, self.turn = side, setup, turn
        self.text = {c: "" for c in Channel}
        self.border_title = Content.assemble((f"{side.upper()} ", "bold"), visible(setup.label))

    def compose(self) -> ComposeResult:
        yield Static("waiting …", id=f"{self.side}-figures", classes="side-figures",
                     markup=False)
        for channel in Channel:
            pane = ChannelPane(TITLES[channel], id=f"{self.side}-{channel.value}")
            pane.set_class(channel is Channel.OUTPUT, "side-output")
            yield pane

    def pane(self, channel: Channel) -> ChannelPane:
        return self.query_one(f"#{self.side}-{channel.value}", ChannelPane)

    async def on_mount(self) -> None:
        if self.turn.finished:  # a comparison kept earlier, shown again
            self.text = await asyncio.to_thread(stored_panes, self.turn)
            answer = self.turn.answer
            self._say(figures(answer.facts, self.turn.stats, answer.reflection_count))
        for channel in Channel:
            await self.pane(channel).show(self.text[channel], streaming=not self.turn.finished,
                                          top=True)

    @property
    def figures_text(self) -> str:
        return str(self.query_one(f"#{self.side}-figures", Static).render())

    def _say(self, text: str) -> None:
        self.query_one(f"#{self.side}-figures", Static).update(text)

    async def on_stream_batch(self, batch: StreamBatch) -> None:
        batch.stop()
        if batch.turn is not self.turn:
            return
        for channel, grown in batch.panes.items():
            if batch.whole:
                self.text[channel] = grown
                await self.pane(channel).show(grown, streaming=True)
            elif grown:
                self.text[channel] += grown
                await self.pane(channel).write(grown)
        self._say(figures(batch.facts, None, batch.reflections, batch.tokens_per_second))

    async def on_stream_finished(self, message: StreamFinished) -> None:
        """The answer is whole: the panes drawn from it, the figures final; the message goes
        on up to the screen, which compares the two once both have ended."""
        if message.turn is not self.turn:
            return
        self.turn.stats = message.stats
        self.text = dict(message.panes)
        answer = self.turn.answer
        self._say(figures(answer.facts, message.stats, answer.reflection_count))
        for channel in Channel:
            await self.pane(channel).finish(message.panes[channel], NOTHING,
                                            top=channel is not Channel.OUTPUT)
