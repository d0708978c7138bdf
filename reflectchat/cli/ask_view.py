"""`reflectchat ask` in a terminal: channel events streamed live, labelled and styled.

A model that reasons may close a thinking section its prompt opened (`...</think>answer`), and
a terminal cannot move text once printed. So while the answer of a model declared to reason
(the think or reflection format) starts with untagged text, that text is held back (a status
line counts it) until the model shows what it is: a closing thinking tag prints it as
thinking, an opening one or the end of the answer as output. Under `auto` (a model of unknown
kind, most often plain) text streams at once, and a late closing tag is noted below it."""

from __future__ import annotations

from rich.console import Console
from rich.status import Status
from rich.text import Text

from reflectchat.chat.answer_run import LOOP_NOTE, length_note
from reflectchat.engine.base import FinishReason, GenerationStats
from reflectchat.reflection.events import Channel, ChannelEvent, EventKind
from reflectchat.reflection.facts import ChannelFacts, facts_text
from reflectchat.untrusted import visible

STYLES = {Channel.THINKING: "dim", Channel.REFLECTION: "yellow", Channel.OUTPUT: ""}


class TerminalView:
    def __init__(self, out: Console, err: Console) -> None:
        self._out, self._err = out, err
        self._reflections = 0
        self._labelled: Channel | None = None
        self._any_label = False
        self._held: list[ChannelEvent] | None = None  # untagged text of unknown channel
        self._started = False
        self._status: Status | None = None

    def banner(self, label: str, is_demo: bool) -> None:
        style = "bold magenta" if is_demo else "dim"
        self._err.print(Text(f"reflectchat · {visible(label)}", style=style))

    def show(self, event: ChannelEvent, may_be_thinking: bool) -> None:
        """`may_be_thinking`: untagged text at the start could be thinking whose opening tag
        was in the prompt (read at the first event only)."""
        if not self._started:
            self._started = True
            self._held = [] if may_be_thinking else None
        if self._held is None:
            self._print(event)
        elif event.kind is EventKind.RECLASSIFY:
            self._release(as_thinking=True)
        elif event.kind is EventKind.OPEN and event.channel is Channel.THINKING:
            self._release(as_thinking=False)
            self._print(event)
        else:
            self._held.append(event)
            self._show_waiting()

    def _show_waiting(self) -> None:
        if not self._err.is_terminal:
            return
        chars = sum(len(e.text) for e in self._held or [])
        note = (f"{chars:,} characters so far, shown once the model marks them as thinking or "
                "answer (--format plain shows them at once)")
        if self._status is None:
            self._status = Status(note, console=self._err)
            self._status.start()
        else:
            self._status.update(note)

    def _release(self, as_thinking: bool) -> None:
        held, self._held = self._held or [], None
        if self._status is not None:
            self._status.stop()
            self._status = None
        for event in held:
            channel = Channel.THINKING if as_thinking and event.channel is Channel.OUTPUT \
                else event.channel
            self._print(ChannelEvent(event.kind, channel, event.text))

    def _print(self, event: ChannelEvent) -> None:
        if event.kind is EventKind.RECLASSIFY:  # too late to move: say what the text was
            self._out.print(Text("\n\n── the text above was thinking: the model closed it with "
                                 f"{event.text} (its opening tag was in the prompt) ──",
                                 style="dim"))
            self._labelled = None
        elif event.kind is EventKind.OPEN and event.channel is Channel.REFLECTION:
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
        gap = "\n\n" if self._any_label else ""  # end the line, then leave a blank one
        self._out.print(Text(f"{gap}── {name} ──", style=style))
        self._labelled = channel
        self._any_label = True

    def finish(self, stats: GenerationStats, limit: int | None, facts: ChannelFacts) -> None:
        self._release(as_thinking=False)
        self._out.print()
        if facts_text(facts):
            self._err.print(Text(facts_text(facts), style="dim"))
        parts = [f"{stats.prompt_tokens} prompt + {stats.completion_tokens} answer tokens"]
        if stats.time_to_first_token_s is not None:
            parts.append(f"first token {stats.time_to_first_token_s:.2f} s")
        if stats.tokens_per_second:
            parts.append(f"{stats.tokens_per_second:.1f} tok/s")
        spec = stats.speculation_text()
        if spec:
            parts.append(f"{spec} ({stats.accepted:,} of {stats.drafted:,} drafted tokens "
                         f"kept, {stats.speculation})")
        parts.append(stats.finish_reason.value)
        self._err.print(Text(" · ".join(parts), style="dim"))
        if stats.finish_reason is FinishReason.LENGTH:
            self._err.print(Text(length_note(stats, limit, "--max-tokens N"), style="yellow"))
        elif stats.finish_reason is FinishReason.CANCELLED:
            self._err.print(Text("Stopped; the partial answer is above.", style="yellow"))
        elif stats.finish_reason is FinishReason.LOOP:
            self._err.print(Text(LOOP_NOTE, style="yellow"))
        if stats.reasoning_note:
            self._err.print(Text(f"Note: {stats.reasoning_note}.", style="yellow"))

    def saved(self, session_id: int) -> None:
        self._err.print(Text(f"Saved as session {session_id} (reflectchat sessions show "
                             f"{session_id}).", style="dim"))
