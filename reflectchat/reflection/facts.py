"""The facts of one answer per channel: how many tokens went to thinking, reflection and output,
how long each took to generate, and when the output began (what a user waits for).

Tokens are the model's pieces (one per token from llama.cpp, about one per token from a server's
stream). A piece's time is the gap since the piece before it, counted to the channel the piece
went to; the gap before the first piece is the prompt's processing (`wait_s`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reflectchat.reflection.events import Channel

CHANNELS = tuple(c.value for c in Channel)  # thinking, reflection, output


def _zeros() -> dict[str, float]:
    return dict.fromkeys(CHANNELS, 0.0)


@dataclass
class ChannelFacts:
    tokens: dict[str, int] = field(default_factory=lambda: dict.fromkeys(CHANNELS, 0))
    seconds: dict[str, float] = field(default_factory=_zeros)
    wait_s: float | None = None  # from the request to the first piece
    first_output_s: float | None = None  # from the request to the first output piece
    start: float | None = field(default=None, repr=False)
    _last: float | None = field(default=None, repr=False)

    def piece(self, channel: Channel, at: float | None) -> None:
        """One piece that went to `channel`, arriving at `at` (perf_counter seconds; None:
        no clock, count it only)."""
        self.tokens[channel.value] += 1
        if at is None or self.start is None:
            return
        if self._last is None:
            self.wait_s = at - self.start
        else:
            self.seconds[channel.value] += at - self._last
        self._last = at
        if channel is Channel.OUTPUT and self.first_output_s is None:
            self.first_output_s = at - self.start

    def snapshot(self) -> ChannelFacts:
        """A copy to hand to another thread while this one keeps counting."""
        return ChannelFacts(dict(self.tokens), dict(self.seconds), self.wait_s,
                            self.first_output_s)

    def output_was_thinking(self) -> None:
        """The output so far turns out to be thinking (a prefilled opener): move its facts."""
        for facts in (self.tokens, self.seconds):
            facts["thinking"] += facts["output"]  # type: ignore[operator]
            facts["output"] = 0
        self.first_output_s = None

    @property
    def reasoning_tokens(self) -> int:
        return self.tokens["thinking"] + self.tokens["reflection"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "channels": {c: {"tokens": self.tokens[c], "seconds": round(self.seconds[c], 3)}
                         for c in CHANNELS},
            "wait_s": None if self.wait_s is None else round(self.wait_s, 3),
            "first_output_s": None if self.first_output_s is None
            else round(self.first_output_s, 3),
        }

    @classmethod
    def from_dict(cls, data: object) -> ChannelFacts:
        """Facts from stored stats; anything missing or not a plain number is left at zero
        (a damaged or hostile record, or one from before these were kept)."""
        facts = cls()
        data = data if isinstance(data, dict) else {}
        channels = data.get("channels")
        for name in CHANNELS:
            entry = channels.get(name) if isinstance(channels, dict) else None
            if isinstance(entry, dict):
                tokens, seconds = entry.get("tokens"), entry.get("seconds")
                if _plain(tokens) and tokens == int(tokens) and tokens >= 0:
                    facts.tokens[name] = int(tokens)
                if _plain(seconds) and seconds >= 0:
                    facts.seconds[name] = float(seconds)
        for key in ("wait_s", "first_output_s"):
            value = data.get(key)
            if _plain(value) and value >= 0:
                setattr(facts, key, float(value))
        if not channels and _plain(data.get("reasoning_tokens")):  # stored before channels
            facts.tokens["thinking"] = max(int(data["reasoning_tokens"]), 0)
        return facts


def _plain(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) \
        and value == value and abs(value) < 1e15


def duration_text(seconds: float) -> str:
    """"0.8 s", "12 s", "2 min 5 s"."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if rest else f"{minutes} min"


def facts_text(facts: ChannelFacts) -> str:
    """One line: "thinking 812 tokens in 12 s · reflection 40 in 3.1 s · output 120 in 4.0 s ·
    output after 18 s" (channels with no tokens left out)."""
    parts = []
    for name in CHANNELS:
        if facts.tokens[name]:
            unit = " tokens" if not parts else ""
            parts.append(f"{name} {facts.tokens[name]:,}{unit} in "
                         f"{duration_text(facts.seconds[name])}")
    if facts.first_output_s is not None:
        parts.append(f"output after {duration_text(facts.first_output_s)}")
    return " · ".join(parts)
