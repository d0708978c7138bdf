"""`reflectchat ask` in a terminal: channel events streamed live, labelled and styled."""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

from reflectchat.engine.base import FinishReason, GenerationStats
from reflectchat.reflection.events import Channel, ChannelEvent, EventKind
from reflectchat.untrusted import visible

STYLES = {Channel.THINKING: "dim", Channel.REFLECTION: "yellow", Channel.OUTPUT: ""}


class TerminalView:
    def __init__(self, out: Console, err: Console) -> None:
        self._out, self._err = out, err
        self._reflections = 0
        self._labelled: Channel | None = None
        self._any_label = False

    def banner(self, label: str, is_demo: bool) -> None:
        style = "bold magenta" if is_demo else "dim"
        self._err.print(Text(f"reflectchat · {label}", style=style))

    def show(self, event: ChannelEvent) -> None:
        if event.kind is EventKind.OPEN and event.channel is Channel.REFLECTION:
            self._reflections += 1
        elif event.kind is EventKind.TEXT:
            body = event.text
            if event.channel is not self._labelled:
                self._label(event.channel)
                body = body.lstrip("\n")
            text = Text(visible(body), style=STYLES[event.channel])
            self._out.print(text, end="", soft_wrap=True)
        elif event.kind is EventKind.CLOSE and event.channel is self._labelled:
            self._labelled = None

    def _label(self, channel: Channel) -> None:
        """A label wherever the channel changes, e.g. thinking that resumes after a reflection."""
        name = channel.value
        if channel is Channel.REFLECTION:
            name = f"reflection {self._reflections}"
        style = "bold yellow" if channel is Channel.REFLECTION else "bold"
        gap = "\n\n" if self._any_label else "\n"  # end the line, then leave a blank one
        self._out.print(Text(f"{gap}── {name} ──", style=style))
        self._labelled = channel
        self._any_label = True

    def finish(self, stats: GenerationStats) -> None:
        self._out.print()
        parts = [f"{stats.prompt_tokens} prompt + {stats.completion_tokens} answer tokens"]
        if stats.time_to_first_token_s is not None:
            parts.append(f"first token {stats.time_to_first_token_s:.2f} s")
        if stats.tokens_per_second:
            parts.append(f"{stats.tokens_per_second:.1f} tok/s")
        parts.append(stats.finish_reason.value)
        self._err.print(Text(" · ".join(parts), style="dim"))
        if stats.finish_reason is FinishReason.LENGTH:
            self._err.print(Text("The answer reached its token limit (--max-tokens or the "
                                 "context) and was cut short.", style="yellow"))
        elif stats.finish_reason is FinishReason.CANCELLED:
            self._err.print(Text("Stopped; the partial answer is above.", style="yellow"))

    def saved(self, session_id: int) -> None:
        self._err.print(Text(f"Saved as session {session_id} (reflectchat sessions show "
                             f"{session_id}).", style="dim"))
