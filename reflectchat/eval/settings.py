"""The reasoning settings an evaluation compares: `default` (the model's own), an effort
(`off`, `low`, `medium`, `high`), a thinking budget (`budget:N` tokens), or an effort and a
budget together (`high+budget:512`)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from reflectchat.engine.base import EFFORTS, Sampling
from reflectchat.eval.items import EvalError


@dataclass(frozen=True)
class Setting:
    name: str
    effort: str | None = None
    budget: int | None = None

    def applied(self, sampling: Sampling) -> Sampling:
        return replace(sampling, effort=self.effort if self.effort else sampling.effort,
                       thinking_budget=self.budget if self.budget is not None
                       else sampling.thinking_budget)


def parse_settings(text: str) -> list[Setting]:
    """`default,off,high+budget:512` and the like; EvalError names what is not understood."""
    settings = []
    for name in (part.strip() for part in text.split(",")):
        effort, budget = None, None
        for word in name.split("+"):
            if word == "default":
                continue
            if word in EFFORTS:
                effort = word
            elif word.startswith("budget:") and word[7:].isdigit():
                budget = int(word[7:])
            else:
                raise EvalError(f"unknown setting {word!r} in --settings: use default, "
                                f"{', '.join(EFFORTS)}, budget:N or two joined by +")
        settings.append(Setting(name, effort, budget))
    if len({s.name for s in settings}) != len(settings):
        raise EvalError("--settings names a setting twice")
    return settings
