"""The models an evaluation compares, and which of them is loaded when.

A server costs nothing to keep: every endpoint stays connected the whole run. A model run here
can be most of the machine's memory, so two of them are never loaded at once: they take turns,
one block of items each (`LOCAL_TURN`), and the one whose turn it is is loaded when its first
answer is due, after the other is closed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from reflectchat.engine.base import Backend
from reflectchat.eval.results import ResultsFile
from reflectchat.models.choice import ModelChoice, settled_choice

LOCAL_TURN = 10  # items a local model answers before the next local model is loaded


@dataclass
class Contender:
    choice: ModelChoice
    load: Callable[[ModelChoice], Backend]
    store: ResultsFile | None = None  # set once the run key is known
    engine: Backend | None = None
    name: str = ""  # its name in the table when several models are compared

    @property
    def local(self) -> bool:
        return self.choice.endpoint is None

    def open(self) -> Backend:
        if self.engine is None:
            self.engine = self.load(self.choice)
            self.choice = settled_choice(self.choice, self.engine)
        return self.engine

    def close(self) -> None:
        if self.engine is not None:
            self.engine.close()
            self.engine = None


class Lineup:
    def __init__(self, contenders: list[Contender]) -> None:
        self.contenders = contenders

    @property
    def turn(self) -> int:
        """Items per block: 1 (fully interleaved) unless two local models must take turns."""
        return LOCAL_TURN if sum(c.local for c in self.contenders) > 1 else 1

    def engine_for(self, index: int) -> tuple[Backend, ModelChoice]:
        """The engine of contender `index`, loaded now if need be, the other local model
        closed first; and its choice as the loaded model settled it."""
        wanted = self.contenders[index]
        if wanted.engine is None and wanted.local:
            for other in self.contenders:
                if other.local and other is not wanted:
                    other.close()
        engine = wanted.open()
        return engine, wanted.choice

    def close(self) -> None:
        for contender in self.contenders:
            contender.close()
