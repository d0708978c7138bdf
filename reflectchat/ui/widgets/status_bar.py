"""The status bar: model, GPU offload, the context meter, speed, and tokens and time per channel
(thinking, reflection, output); or load progress."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.content import Content
from textual.widgets import ProgressBar, Static

from reflectchat.reflection.facts import ChannelFacts, duration_text
from reflectchat.sizes import size_text
from reflectchat.untrusted import visible

SEPARATOR = " │ "
MODEL_MIN = 20  # characters of the model's name kept before other parts give way


WARN_AT, FULL_AT = 0.8, 0.95  # context shares shown in warning, then error colours


@dataclass
class Status:
    model: str = ""
    template: str = ""  # a chat template that is not the model's own
    gpu_layers: int = 0
    layer_count: int = 0  # 0: unknown (a server)
    ctx_used: int = 0
    ctx_total: int = 0
    ctx_reasoning: int | None = None  # earlier reasoning sent back (None: it is not sent)
    tokens_per_second: float | None = None
    first_token_s: float | None = None
    facts: ChannelFacts | None = None  # the answer's tokens and time per channel

    def parts(self) -> list[tuple[int, Content]]:
        """(keep order: lower is dropped first, text) of everything but the model's name."""
        parts: list[tuple[int, Content]] = []
        if self.template:
            parts.append((1, Content(f"{visible(self.template)} template")))
        if self.layer_count:
            where = f"GPU {self.gpu_layers}/{self.layer_count} layers" if self.gpu_layers \
                else "CPU"
            parts.append((5, Content(where)))  # the load note said it; thinking facts first
        parts.append((10, self.context_meter()))
        if self.tokens_per_second is not None:
            parts.append((9, Content(f"{self.tokens_per_second:,.1f} tok/s")))
        if self.first_token_s is not None:
            parts.append((2, Content(f"first token {self.first_token_s:.2f} s")))
        facts = self.facts
        if facts is not None:
            if facts.first_output_s is not None:
                parts.append((4, Content(f"output after {duration_text(facts.first_output_s)}")))
            for keep, name, label in ((7, "thinking", "think"), (3, "reflection", "reflect"),
                                      (6, "output", "out")):
                if facts.tokens[name] or name != "reflection":
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


class StatusBar(Horizontal):
    def __init__(self, id: str | None = None) -> None:
        super().__init__(id=id)
        self._shown: Status | None = None  # re-fitted to the width on resize

    def compose(self) -> ComposeResult:
        yield Static(id="status-text")
        yield ProgressBar(total=1.0, show_eta=False, id="load-progress")

    def loading(self, label: str, fraction: float) -> None:
        self._shown = None
        self.query_one("#status-text", Static).update(
            Content.assemble(("Loading ", "$warning"), (visible(label), "bold"), " …")
        )
        bar = self.query_one(ProgressBar)
        bar.display = True
        bar.update(progress=fraction)

    def downloading(self, what: str, done: int, total: int, speed: float, left_s: float) -> None:
        self._shown = None
        minutes = f"{left_s / 60:.0f} min" if left_s >= 90 else f"{left_s:.0f} s"
        self.query_one("#status-text", Static).update(Content.assemble(
            ("Downloading ", "$warning"), (visible(what), "bold"),
            f": {size_text(done)} of {size_text(total)}, {size_text(speed)}/s, "
            f"{minutes} left (Esc cancels)"))
        bar = self.query_one(ProgressBar)
        bar.display = True
        bar.update(progress=done / total if total else 0)

    def message(self, text: str, style: str = "$error") -> None:
        self._shown = None
        self.query_one(ProgressBar).display = False
        self.query_one("#status-text", Static).update(Content.styled(visible(text), style))

    def show(self, status: Status) -> None:
        self._shown = status
        self.query_one(ProgressBar).display = False
        self.query_one("#status-text", Static).update(status.render(self.size.width))

    def on_resize(self) -> None:
        if self._shown is not None:
            self.query_one("#status-text", Static).update(self._shown.render(self.size.width))
