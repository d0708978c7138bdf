"""Scoring runs: what is left to score (the original pairs, then the teacher's rewrites), and
scoring it with each pair saved the moment it is scored, so a killed run resumes where it
stopped. Pairs longer than the context are skipped and counted, never cut."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reflectchat.engine.scoring import Scorer, TooLong
from reflectchat.store.session_store import SessionStore
from reflectchat.store.tune_pairs import StoredPair, save
from reflectchat.tune.ifd import pair_tokens, score_pair


def pending(found: list[StoredPair], model: str) -> list[tuple[StoredPair, str]]:
    """(pair, which) still to score: the original, and the teacher's rewrites."""
    todo = []
    for pair in found:
        saved = pair.saved
        if saved.get("scored_by") != model or not (saved.get("scores") or saved.get("skipped")):
            todo.append((pair, "scores"))
        if saved.get("new_instruction") and not saved.get("instruction_scores"):
            todo.append((pair, "instruction_scores"))
        if saved.get("better_answer") and not saved.get("answer_scores"):
            todo.append((pair, "answer_scores"))
    return todo


def texts(pair: StoredPair, which: str) -> tuple[str, str]:
    saved = pair.saved
    if which == "instruction_scores":
        return saved["new_instruction"], saved["new_answer"]
    if which == "answer_scores":
        return pair.prompt, saved["better_answer"]
    return pair.prompt, pair.output


def score_pending(scorer: Scorer, store: SessionStore, todo: list[tuple[StoredPair, str]],
                  model: str, tick: Callable[[], None] = lambda: None
                  ) -> tuple[list[dict[str, Any]], int]:
    """Score each (pair, which), saving as it goes; returns the results and how many pairs
    were too long for the context."""
    results, too_long = [], 0
    for pair, which in todo:
        prompt, answer = texts(pair, which)
        if pair_tokens(scorer, prompt, answer) > scorer.engine.n_ctx:
            too_long += 1
            if which == "scores":
                save(store, pair.message_id, scored_by=model, scores=None,
                     skipped=f"longer than the {scorer.engine.n_ctx:,}-token context")
            tick()
            continue
        try:
            scores = score_pair(scorer, prompt, answer).to_dict()
        except TooLong:
            too_long += 1
            tick()
            continue
        fields = {which: scores}
        if which == "scores":
            fields.update(scored_by=model, skipped=None)
        save(store, pair.message_id, **fields)
        pair.saved.update(fields)
        results.append({"message": pair.message_id, "session": pair.session_id,
                        "scored": which, **scores})
        tick()
    return results, too_long
