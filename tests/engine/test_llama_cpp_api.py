"""The one door into llama-cpp-python: a version that lacks what we use is named in one
sentence, and the load-time parameter hook reaches only the thread that loads."""

from __future__ import annotations

import threading

import pytest
from llama_cpp import llama_cpp as low_level

from reflectchat.engine.errors import EngineError
from reflectchat.engine.llama_cpp_api import check_installed, model_params
from reflectchat.engine.llama_cpp_model import LoadedModel


def test_the_installed_version_has_everything_we_use():
    check_installed()


def test_a_llama_object_without_what_we_use_is_one_clear_sentence():
    class OlderLlama:  # a llama-cpp-python whose Llama keeps its context elsewhere
        metadata = None
        closed = False

        def close(self) -> None:
            self.closed = True

    older = OlderLlama()
    with pytest.raises(EngineError) as refused:
        LoadedModel(older)  # type: ignore[arg-type]
    message = str(refused.value)
    assert message.startswith("The installed llama-cpp-python (")
    assert "lacks Llama._model, Llama._ctx, Llama._batch" in message
    assert message.endswith("install llama-cpp-python>=0.3.36,<0.4") and older.closed


def test_the_parameter_hook_reaches_only_the_loading_thread():
    """A Llama() another thread builds during our load keeps llama.cpp's own defaults (repacked
    weights on, no progress callback)."""
    seen: dict[str, object] = {}
    inside = threading.Event()
    done = threading.Event()

    def other_thread() -> None:
        inside.wait(10)
        params = low_level.llama_model_default_params()
        seen["other"] = (params.use_extra_bufts, bool(params.progress_callback))
        done.set()

    thread = threading.Thread(target=other_thread)
    thread.start()
    with model_params(progress=lambda _value: True, repack=False):
        params = low_level.llama_model_default_params()
        seen["loading"] = (params.use_extra_bufts, bool(params.progress_callback))
        inside.set()
        assert done.wait(10)
    thread.join(10)
    assert seen == {"loading": (False, True), "other": (True, False)}
    after = low_level.llama_model_default_params()
    assert (after.use_extra_bufts, bool(after.progress_callback)) == (True, False)
