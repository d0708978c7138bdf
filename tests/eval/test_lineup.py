"""Models compared in one evaluation: two run here are never in memory together, a server stays
connected. Real llama.cpp engines on scripted GGUFs."""

from __future__ import annotations

from pathlib import Path

from reflectchat.demo.scripted_model import Script
from reflectchat.engine.base import Backend, Sampling, TagFormat
from reflectchat.engine.llama import EngineSettings, LlamaEngine
from reflectchat.eval.lineup import LOCAL_TURN, Contender, Lineup
from reflectchat.models.choice import ModelChoice


def local(path: Path, opened: list[str]) -> Contender:
    def load(choice: ModelChoice) -> Backend:
        opened.append(path.name)
        return LlamaEngine(path, EngineSettings(n_ctx=64))

    return Contender(ModelChoice(path, path.name, TagFormat.AUTO, "", Sampling()), load)


def test_two_local_models_take_turns_and_are_never_loaded_together(make_model):
    opened: list[str] = []
    a = local(make_model(Script("<|go|>", ["a"]), name="a.gguf"), opened)
    b = local(make_model(Script("<|go|>", ["b"]), name="b.gguf"), opened)
    lineup = Lineup([a, b])
    assert lineup.turn == LOCAL_TURN
    engine, choice = lineup.engine_for(0)
    assert choice.label == "a.gguf" and a.engine is engine
    assert lineup.engine_for(0)[0] is engine  # kept while its turn lasts
    lineup.engine_for(1)
    assert a.engine is None and b.engine is not None
    lineup.engine_for(0)
    assert b.engine is None and opened == ["a.gguf", "b.gguf", "a.gguf"]
    lineup.close()
    assert a.engine is None


def test_one_local_model_is_interleaved_item_by_item(make_model):
    only = local(make_model(Script("<|go|>", ["a"])), [])
    assert Lineup([only]).turn == 1
