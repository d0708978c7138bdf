"""Loading with the planned GPU layers, and stepping down when a load fails."""

from __future__ import annotations

import argparse

import pytest

from reflectchat.demo.scripted_model import Control, Script
from reflectchat.engine.errors import EngineError
from reflectchat.engine.llama import EngineSettings
from reflectchat.models.loading import fewer_layers, load_with_fallback, planned_load

SCRIPT = Script("<|go|>", [Control("<output>"), "Hi.", Control("</output>")])


def test_a_failing_load_steps_gpu_layers_down_to_none_and_says_so(make_model):
    path = make_model(SCRIPT)
    # a context no machine has memory for fails at every layer count
    settings = EngineSettings(n_gpu_layers=9, n_ctx=1 << 40)
    with pytest.raises(EngineError) as caught:
        load_with_fallback(path, settings)
    assert "also failed with 9 GPU layers, 6 GPU layers, 4 GPU layers, 2 GPU layers, " \
           "1 GPU layers" in str(caught.value)


def test_a_good_load_has_no_note_and_layers_count_down_by_thirds(make_model):
    path = make_model(SCRIPT)
    engine = load_with_fallback(path, EngineSettings(n_gpu_layers=0, n_ctx=256))
    assert engine.load_note is None
    engine.close()
    assert [fewer_layers(n, path) for n in (81, 54, 3, 1)] == [54, 36, 2, 0]
    assert fewer_layers(-1, path) == 1  # the scripted model: 1 layer + output, two thirds of 2


def test_the_plan_gives_no_gpu_layers_on_a_cpu_build(make_model):
    import llama_cpp

    path = make_model(SCRIPT)
    if llama_cpp.llama_supports_gpu_offload():
        pytest.skip("this llama.cpp build can offload")
    from reflectchat.cli.args import engine_settings
    from reflectchat.models.choice import choose_model

    args = argparse.Namespace(gpu_layers=None, ctx=None, tensor_split=None, flash_attn=False,
                              cache_type_k="f16", cache_type_v="f16", threads=None,
                              no_mmap=False, mlock=False, template=None, repack="auto")
    assert engine_settings(args, choose_model(str(path), None, False)).n_gpu_layers == 0
    assert planned_load(path, 512, "f16", "f16", False).gpu_layers == 0  # no usable GPU here
