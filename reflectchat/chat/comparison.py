"""Two answers to one prompt, side by side: what each side ran with (its setup) and which of
them the user marked better. Plain Python: the app runs the sides, the store keeps them (the
two answers as two stored answers after one prompt, each with its setup in its stats), and the
conversation goes on with the chosen one."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from reflectchat.engine.base import EFFORTS

if TYPE_CHECKING:
    from reflectchat.chat.conversation import Turn

SIDES = ("a", "b")
CHOICES = ("a", "b", "tie")
SPECULATIONS = ("off", "ngram", "draft")


@dataclass(frozen=True)
class Setup:
    """What one side answered with: the model (its label: a file and quant, or a model on a
    server), and what was asked of its reasoning and decoding (None: as the model runs)."""

    model: str
    effort: str | None = None
    thinking_budget: int | None = None
    speculation: str | None = None  # "off", "ngram" or "draft"

    @property
    def label(self) -> str:
        """"Qwen3-8B Q8_0 · effort high · budget 2,000 · spec off": how tables name it."""
        parts = [self.model]
        if self.effort:
            parts.append(f"effort {self.effort}")
        if self.thinking_budget is not None:
            parts.append(f"budget {self.thinking_budget:,}")
        if self.speculation:
            parts.append(f"spec {self.speculation}")
        return " · ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, data: object) -> Setup | None:
        """A stored setup, or None where it cannot be read (a damaged or hostile record);
        a field of the wrong kind is left out."""
        if not isinstance(data, dict) or not isinstance(data.get("model"), str):
            return None
        budget = data.get("thinking_budget")
        return cls(data["model"][:500],
                   data.get("effort") if data.get("effort") in EFFORTS else None,
                   budget if type(budget) is int and 0 <= budget <= 1 << 20 else None,
                   data.get("speculation") if data.get("speculation") in SPECULATIONS
                   else None)


def differences(a: Setup, b: Setup) -> list[str]:
    """What the two setups differ in, in words: "model", "effort low → high", ..."""
    found = []
    if a.model != b.model:
        found.append("model")
    for name, word in (("effort", "effort"), ("thinking_budget", "thinking budget"),
                       ("speculation", "speculation")):
        x, y = getattr(a, name), getattr(b, name)
        if x != y:
            found.append(f"{word} {_as_set(x)} → {_as_set(y)}")
    return found


def _as_set(value: object) -> str:
    if value is None:
        return "the model's own"
    return f"{value:,}" if isinstance(value, int) else str(value)


@dataclass
class Comparison:
    """One prompt answered by two setups: `sides` are the two turns (the same prompt), in the
    order they were asked; `choice` is the user's mark (None until marked)."""

    setups: tuple[Setup, Setup]
    sides: list[Turn] = field(default_factory=list)
    choice: str | None = None
    stored_at: tuple[int, int] | None = None  # (session, seq of side a's answer) once saved

    def side_of(self, turn: Turn) -> str | None:
        return next((s for s, t in zip(SIDES, self.sides, strict=False) if t is turn), None)

    @property
    def finished(self) -> bool:
        return len(self.sides) == 2 and all(t.finished for t in self.sides)

    @property
    def chosen(self) -> Turn:
        """The turn the conversation goes on with: the one marked better, else the first."""
        return self.sides[1] if self.choice == "b" and len(self.sides) > 1 else self.sides[0]

    def stored(self, turn: Turn) -> dict[str, Any] | None:
        """What a side's stored answer keeps of the comparison: its side and setup, and on
        side a the user's mark."""
        side = self.side_of(turn)
        if side is None:
            return None
        kept: dict[str, Any] = {"side": side, "setup": self.setups[SIDES.index(side)].to_dict()}
        if side == "a" and self.choice is not None:
            kept["choice"] = self.choice
        return kept


def mark_sentence(comparison: Comparison) -> str:
    """"marked: answer B better (Qwen3-8B Q8_0)", "marked: a tie", "not marked"."""
    if comparison.choice == "tie":
        return "marked: a tie"
    if comparison.choice in SIDES:
        setup = comparison.setups[SIDES.index(comparison.choice)]
        return f"marked: answer {comparison.choice.upper()} better ({setup.label})"
    return "not marked"
