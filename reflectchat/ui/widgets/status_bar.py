"""The status bar: model, GPU offload, the context meter, speed, and tokens and time per channel
(thinking, reflection, output); or load progress."""

from __future__ import annotations

from dataclasses import dataclass, replace

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.content import Content
from textual.reactive import reactive
from textual.widgets import ProgressBar, Static

from reflectchat.chat.conversation import Conversation, Turn
from reflectchat.engine.base import Sampling
from reflectchat.reflection.facts import ChannelFacts, duration_text
from reflectchat.sizes import size_text
from reflectchat.untrusted import visible

SEPARATOR = " │ "
MODEL_MIN = 20  # characters of the model's name kept before other parts give way


WARN_AT, FULL_AT = 0.8, 0.95  # context shares shown in warning, then error colours


@dataclass(frozen=True)
class ModelStatus:
    """What the model host knows: the model and how it runs."""

    model: str = ""
    template: str = ""  # a chat template that is not the model's own
    reading: str = ""  # the reasoning format answers are read with, and why
    gpu_layers: int = 0
    layer_count: int = 0  # 0: unknown (a server)
    ctx_total: int = 0


@dataclass(frozen=True)
class AnswerStatus:
    """What the chat knows: the context its conversation fills, the settings of its next
    answer, and the figures of the answer in view."""

    control: str = ""  # the reasoning effort and thinking budget asked for ("" : the model's)
    ctx_used: int = 0
    ctx_reasoning: int | None = None  # earlier reasoning sent back (None: it is not sent)
    tokens_per_second: float | None = None
    speculation: str = ""  # "spec 71% · 2.1x": drafted tokens kept, and the speed-up
    first_token_s: float | None = None
    facts: ChannelFacts | None = None  # the answer's tokens and time per channel
    restored: str = ""  # what putting the session's saved context back did

    def showing(self, conversation: Conversation, turn: Turn | None) -> AnswerStatus:
        """This status with the context `conversation` fills, and `turn`'s speed and facts
        once it is whole."""
        status = self
        last = conversation.turns[-1] if conversation.turns else None
        if last is not None and last.stats is not None:
            status = replace(status, ctx_used=last.stats.prompt_tokens
                             + last.stats.completion_tokens)
        status = replace(status, ctx_reasoning=conversation.reasoning_sent())
        if turn is not None and turn.stats is not None:
            stats = turn.stats
            status = replace(status, tokens_per_second=stats.tokens_per_second,
                             first_token_s=stats.time_to_first_token_s,
                             facts=turn.answer.facts,
                             speculation=stats.speculation_text() or "")
        return status


@dataclass(frozen=True)
class Status(AnswerStatus, ModelStatus):
    """The whole line: the model's part and the chat's."""

    @classmethod
    def of(cls, model: ModelStatus, answer: AnswerStatus) -> Status:
        return cls(**vars(model), **vars(answer))

    def parts(self) -> list[tuple[float, Content]]:
        """(keep order: lower is dropped first, text) of everything but the model's name."""
        parts: list[tuple[float, Content]] = []
        if self.template:
            parts.append((1, Content(f"{visible(self.template)} template")))
        if self.reading:
            parts.append((1, Content(visible(self.reading))))
        if self.control:  # it changes the next answers: kept before the speed, after ctx
            parts.append((9.5, Content(self.control)))
        if self.layer_count:
            where = f"GPU {self.gpu_layers}/{self.layer_count} layers" if self.gpu_layers \
                else "CPU"
            parts.append((5, Content(where)))  # the load note said it; thinking facts first
        parts.append((10, self.context_meter()))
        if self.restored:  # until the next answer starts
            parts.append((3, Content(self.restored)))
        if self.tokens_per_second is not None:
            parts.append((9, Content(f"{self.tokens_per_second:,.1f} tok/s")))
        if self.speculation:
            parts.append((8, Content(self.speculation)))
        if self.first_token_s is not None:
            parts.append((2, Content(f"first token {self.first_token_s:.2f} s")))
        facts = self.facts
        if facts is not None:
            if facts.first_output_s is not None:
                parts.append((4, Content(f"output after {duration_text(facts.first_output_s)}")))
            for keep, name, label in ((7, "thinking", "think"), (3, "reflection", "reflect"),
                                      (6, "output", "out")):
                if facts.tokens[name] or name == "output":  # the channels this model uses
                    parts.append((keep, Content(
                        f"{label} {facts.tokens[name]:,} · {duration_text(facts.seconds[name])}")))
        return parts

    def context_meter(self) -> Content:
        """"ctx 5,120/8,192 62%", warning colours near the limit, and the share of earlier
        reasoning when it is sent back."""
        if not self.ctx_total:  # a server that does not say its context
            return Content(f"ctx {self.ctx_used:,}")
        text = f"ctx {self.ctx_used:,}/{self.ctx_total:,}"
        share = self.ctx_used / self.ctx_total
        text += f" {share:.0%}"
        if self.ctx_reasoning and self.ctx_used:
            text += f" (reasoning {min(self.ctx_reasoning / self.ctx_used, 1):.0%})"
        style = "$error" if share >= FULL_AT else "$warning" if share >= WARN_AT else ""
        return Content.styled(text, style) if style else Content(text)

    def render(self, width: int = 0) -> Content:
        """One line: the model's name shortened to `MODEL_MIN` characters if need be, then the
        parts that still do not fit in `width` left out, least useful first (0: no limit)."""
        parts = self.parts()
        model = visible(self.model)  # a file or a server's name: outside text
        if width:
            room = width - 2  # the bar's padding
            shortest = min(len(model), MODEL_MIN)
            while parts and shortest + sum(len(SEPARATOR) + len(t) for _, t in parts) > room:
                parts.remove(min(parts, key=lambda p: p[0]))
            room -= sum(len(SEPARATOR) + len(t) for _, t in parts)
            if len(model) > room:
                model = model[:max(room - 1, 1)] + "…"
        return Content(SEPARATOR).join([Content.styled(model, "bold"),
                                        *(text for _, text in parts)])


def control_text(sampling: Sampling) -> str:
    """"effort low · budget 2,000", what the next answers ask of the model's thinking."""
    parts = []
    if sampling.effort is not None:
        parts.append(f"effort {sampling.effort}")
    if sampling.thinking_budget is not None:
        parts.append(f"budget {sampling.thinking_budget:,}")
    return " · ".join(parts)


@dataclass(frozen=True)
class Loading:
    label: str
    fraction: float


@dataclass(frozen=True)
class Downloading:
    what: str
    done: int
    total: int
    speed: float  # bytes a second
    left_s: float


@dataclass(frozen=True)
class Problem:
    text: str


Activity = Loading | Downloading | Problem  # shown instead of the status while it lasts


class StatusBar(Horizontal):
    """Shows `activity` while there is one, else the model's status and the chat's; each is
    bound to the reactive of whoever knows it."""

    model_status: reactive[ModelStatus] = reactive(ModelStatus)
    answer_status: reactive[AnswerStatus] = reactive(AnswerStatus)
    activity: reactive[Activity | None] = reactive(None, always_update=True)

    @property
    def status(self) -> Status:
        return Status.of(self.model_status, self.answer_status)

    def compose(self) -> ComposeResult:
        yield Static(id="status-text")
        yield ProgressBar(total=1.0, show_eta=False, id="load-progress")

    def on_mount(self) -> None:
        self._draw()

    def watch_model_status(self) -> None:
        self._draw()

    def watch_answer_status(self) -> None:
        self._draw()

    def watch_activity(self) -> None:
        self._draw()

    def on_resize(self) -> None:
        self._draw()

    def _draw(self) -> None:
        if not self.is_mounted:
            return
        text = self.query_one("#status-text", Static)
        bar = self.query_one(ProgressBar)
        activity = self.activity
        bar.display = isinstance(activity, (Loading, Downloading))
        if isinstance(activity, Loading):
            text.update(Content.assemble(("Loading ", "$warning"),
                                         (visible(activity.label), "bold"), " …"))
            bar.update(progress=activity.fraction)
        elif isinstance(activity, Downloading):
            left = activity.left_s
            minutes = f"{left / 60:.0f} min" if left >= 90 else f"{left:.0f} s"
            text.update(Content.assemble(
                ("Downloading ", "$warning"), (visible(activity.what), "bold"),
                f": {size_text(activity.done)} of {size_text(activity.total)}, "
                f"{size_text(activity.speed)}/s, {minutes} left (Esc cancels)"))
            bar.update(progress=activity.done / activity.total if activity.total else 0)
        elif isinstance(activity, Problem):
            text.update(Content.styled(visible(activity.text), "$error"))
        else:
            text.update(self.status.render(self.size.width))
