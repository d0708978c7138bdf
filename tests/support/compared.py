"""Comparisons kept in a real store the way the app keeps them (its session recorder), without
running models: two stored answers to one prompt, each with its setup, and the user's mark."""

from __future__ import annotations

from reflectchat.chat.comparison import Comparison, Setup
from reflectchat.chat.conversation import Turn
from reflectchat.engine.base import GenerationStats, TagFormat
from reflectchat.reflection.answer import Answer
from reflectchat.store.recorder import SessionRecorder
from reflectchat.store.records import SessionMeta
from reflectchat.store.session_store import SessionStore


def answer(thinking: str, output: str) -> str:
    """A Reflection-format model text."""
    return f"<thinking>{thinking}</thinking><output>{output}</output>"


def keep_comparison(store: SessionStore, prompt: str, raws: tuple[str, str],
                    setups: tuple[Setup, Setup], choice: str | None,
                    recorder: SessionRecorder | None = None) -> SessionRecorder:
    """Save one comparison (in `recorder`'s session, else a new one) and mark it `choice`."""
    recorder = recorder or SessionRecorder(store, SessionMeta(model=setups[0].model))
    turns = [Turn(prompt, TagFormat.REFLECTION,
                  Answer.from_raw(raw, TagFormat.REFLECTION)) for raw in raws]
    comparison = Comparison(setups, turns)
    for turn in turns:
        turn.comparison = comparison
    recorder.start_comparison(comparison)
    for turn in turns:
        recorder.finish_turn(turn, GenerationStats(completion_tokens=12))
    comparison.choice = choice
    recorder.mark(comparison)
    return recorder
