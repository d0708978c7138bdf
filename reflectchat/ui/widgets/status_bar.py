"""The status bar: model, GPU offload, context use, speed and token counts, or load progress."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.content import Content
from textual.widgets import ProgressBar, Static

from reflectchat.sizes import size_text


@dataclass
class Status:
    model: str = ""
    template: str = ""  # a chat template that is not the model's own
    gpu_layers: int = 0
    layer_count: int = 0
    ctx_used: int = 0
    ctx_total: int = 0
    tokens_per_second: float | None = None
    first_token_s: float | None = None
    reasoning_tokens: int = 0
    output_tokens: int = 0

    def render(self) -> Content:
        parts = [Content.styled(self.model, "bold")]
        if self.template:
            parts.append(Content(f"{self.template} template"))
        if self.layer_count:  # none for a remote server
            parts.append(Content(f"GPU {self.gpu_layers}/{self.layer_count} layers"))
        parts.append(Content(f"ctx {self.ctx_used:,}/{self.ctx_total:,}"))
        if self.tokens_per_second is not None:
            parts.append(Content(f"{self.tokens_per_second:,.1f} tok/s"))
        if self.first_token_s is not None:
            parts.append(Content(f"first token {self.first_token_s:.2f} s"))
        if self.reasoning_tokens or self.output_tokens:
            parts.append(Content(f"think {self.reasoning_tokens:,} · out {self.output_tokens:,}"))
        return Content(" │ ").join(parts)


class StatusBar(Horizontal):
    def compose(self) -> ComposeResult:
        yield Static(id="status-text")
        yield ProgressBar(total=1.0, show_eta=False, id="load-progress")

    def loading(self, label: str, fraction: float) -> None:
        self.query_one("#status-text", Static).update(
            Content.assemble(("Loading ", "$warning"), (label, "bold"), " …")
        )
        bar = self.query_one(ProgressBar)
        bar.display = True
        bar.update(progress=fraction)

    def downloading(self, what: str, done: int, total: int, speed: float, left_s: float) -> None:
        minutes = f"{left_s / 60:.0f} min" if left_s >= 90 else f"{left_s:.0f} s"
        self.query_one("#status-text", Static).update(Content.assemble(
            ("Downloading ", "$warning"), (what, "bold"),
            f": {size_text(done)} of {size_text(total)}, {size_text(speed)}/s, "
            f"{minutes} left (Esc cancels)"))
        bar = self.query_one(ProgressBar)
        bar.display = True
        bar.update(progress=done / total if total else 0)

    def message(self, text: str, style: str = "$error") -> None:
        self.query_one(ProgressBar).display = False
        self.query_one("#status-text", Static).update(Content.styled(text, style))

    def show(self, status: Status) -> None:
        self.query_one(ProgressBar).display = False
        self.query_one("#status-text", Static).update(status.render())
