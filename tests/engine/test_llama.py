"""The llama.cpp engine on generated GGUFs: nothing lost, stops honoured, clear failures."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import llama_cpp
import pytest

from reflectchat.demo.scripted_model import Bytes, Control, Piece, Script, chat_template
from reflectchat.engine.base import ChatMessage, FinishReason, Sampling, TagFormat
from reflectchat.engine.errors import EngineError
from reflectchat.engine.llama import EngineSettings, LlamaEngine
from reflectchat.models.hardware import detect
from reflectchat.models.local_files import LocalModel
from reflectchat.models.quant_plans import local_rows
from reflectchat.reflection.answer import Answer
from reflectchat.reflection.stream import channel_events

LONG_RULE = "-" * 64
DEEP_INDENT = " " * 40 + "return x"
PERSIAN = "سلام دنیا، این یک آزمایش است."

# Tags as CONTROL tokens (like real Reflection GGUFs) and split across ordinary tokens;
# multi-byte characters split over byte tokens; pieces longer than 32 bytes; Persian text.
REFLECTION = Script("<|go|>", [
    Control("<thinking>"), "\nFirst I plan. ",
    Piece("<refl"), Piece("ection>"), "\nThat plan was wrong.\n", Control("</reflection>"),
    "\nBetter plan: ", Bytes("ش"), Piece("ب"), " and ", Bytes("😀"), "\n",
    Control("</thinking>"), "\n\n", Control("<output>"), f"\n{PERSIAN}\n",
    Piece(LONG_RULE), "\n ", Piece(DEEP_INDENT), " \n",
    Piece("</out"), Piece("put>"),
])
SYSTEM = ChatMessage("system", "Reason inside tags.")
USER = ChatMessage("user", "Question?")


def run(engine: LlamaEngine, sampling: Sampling | None = None, fmt=TagFormat.REFLECTION,
        messages=(SYSTEM, USER)):
    answer = Answer()
    generation = engine.generate(list(messages), sampling or Sampling())
    events = list(channel_events(generation, fmt, answer))
    return answer, generation.stats, events


@pytest.fixture
def engine(make_model) -> LlamaEngine:
    return LlamaEngine(make_model(REFLECTION), EngineSettings(n_ctx=512))


def test_raw_text_is_exactly_the_model_text(engine):
    answer, stats, _ = run(engine)
    assert answer.raw == REFLECTION.text
    assert stats.finish_reason is FinishReason.STOP


def test_llama_cpp_python_streaming_loses_what_we_keep(engine, make_model):
    """The pitfall this engine exists for: the library's own stream drops both."""
    llm = llama_cpp.Llama(str(engine.path), n_ctx=512, verbose=False)
    prompt = engine.prompt.tokens([SYSTEM, USER])
    library = "".join(c["choices"][0]["text"] for c in llm.create_completion(
        prompt, max_tokens=100, stream=True))
    assert "<thinking>" not in library and LONG_RULE not in library
    answer, _, _ = run(engine)
    assert "<thinking>" in answer.raw and LONG_RULE in answer.raw


def test_channels_from_control_tags_and_split_tags(engine):
    answer, _, _ = run(engine)
    assert answer.thinking == "First I plan. \nBetter plan: شب and 😀"
    assert answer.reflections == ["That plan was wrong."]
    assert answer.output == f"{PERSIAN}\n{LONG_RULE}\n {DEEP_INDENT}"
    assert "\ufffd" not in answer.raw


def test_stats_are_reported(engine):
    _, stats, _ = run(engine)
    assert stats.prompt_tokens > 5
    assert stats.time_to_first_token_s is not None and stats.time_to_first_token_s >= 0
    assert stats.tokens_per_second and stats.tokens_per_second > 0
    assert stats.total_s >= stats.time_to_first_token_s
    assert stats.to_dict()["finish_reason"] == "stop"


def test_max_tokens_ends_with_length(engine):
    answer, stats, _ = run(engine, Sampling(max_tokens=5))
    assert stats.finish_reason is FinishReason.LENGTH
    assert stats.completion_tokens == 5
    assert REFLECTION.text.startswith(answer.raw)


def test_stop_request_ends_within_one_token_and_keeps_partial_text(engine):
    cancel = threading.Event()
    generation = engine.generate([SYSTEM, USER], Sampling(), cancel)
    pieces = []
    for piece in generation:
        pieces.append(piece)
        if len(pieces) == 4:
            cancel.set()
    assert generation.stats.finish_reason is FinishReason.CANCELLED
    assert len(pieces) == 4 and generation.stats.completion_tokens == 4
    assert REFLECTION.text.startswith("".join(pieces))


def test_stop_before_the_first_token(engine):
    cancel = threading.Event()
    cancel.set()
    generation = engine.generate([USER], Sampling(), cancel)
    assert list(generation) == []
    assert generation.stats.finish_reason is FinishReason.CANCELLED


def test_unclosed_output_keeps_the_answer(make_model):
    script = Script("<|go|>", [Control("<thinking>"), "ok", Control("</thinking>"),
                               Control("<output>"), "The answer is cut"])
    engine = LlamaEngine(make_model(script), EngineSettings(n_ctx=256))
    answer, stats, events = run(engine)
    assert answer.output == "The answer is cut"
    assert stats.finish_reason is FinishReason.STOP
    assert events[-1].kind.value == "close"


def test_sampling_with_temperature_replays_the_script(engine):
    answer, _, _ = run(engine, Sampling(temperature=1.5, top_p=1.0, top_k=0, seed=7))
    assert answer.raw == REFLECTION.text


def test_chat_template_and_system_prompt_are_applied(make_model):
    a = Script("<|a|>", ["alpha answer"])
    b = Script("<|b|>", ["beta answer"])
    path = make_model([a, b], template=chat_template([(["beta"], "<|b|>")], "<|a|>"))
    engine = LlamaEngine(path, EngineSettings(n_ctx=256))
    assert "Reason inside tags." in engine.prompt.render([SYSTEM, USER])
    assert run(engine, messages=[ChatMessage("user", "say beta")])[0].raw == "beta answer"
    assert run(engine, messages=[ChatMessage("user", "anything")])[0].raw == "alpha answer"


def test_template_that_prefills_think_starts_in_thinking(make_model):
    script = Script("<think>", ["reasoning here\n", Piece("</think>"), "\n\nThe answer."])
    template = "{% for m in messages %}{{ m['content'] }}\n{% endfor %}<think>"
    engine = LlamaEngine(make_model(script, template=template), EngineSettings(n_ctx=256))
    answer, _, _ = run(engine, fmt=TagFormat.THINK, messages=[USER])
    assert (answer.thinking, answer.output) == ("reasoning here", "The answer.")


def test_split_gguf_loads_from_its_first_shard(make_model):
    first = make_model(REFLECTION, name="split.gguf", shards=3)
    assert first.name == "split-00001-of-00003.gguf"
    engine = LlamaEngine(first, EngineSettings(n_ctx=512))
    assert run(engine)[0].raw == REFLECTION.text


def test_conversation_longer_than_the_context_is_an_error(make_model):
    engine = LlamaEngine(make_model(REFLECTION), EngineSettings(n_ctx=32))
    _, stats, _ = run(engine, messages=[ChatMessage("user", "word " * 100)])
    assert stats.finish_reason is FinishReason.ERROR
    assert "context" in stats.error


@pytest.mark.parametrize(("setup", "message"), [
    (lambda d: d / "missing.gguf", "Model file not found"),
    (lambda d: _write(d / "notes.gguf", b"hello, not a model"), "is not a GGUF model file"),
    (lambda d: d, "is a folder"),
])
def test_unusable_paths_give_one_clear_sentence(tmp_path, setup, message):
    with pytest.raises(EngineError, match=message) as err:
        LlamaEngine(setup(tmp_path))
    assert "\n" not in str(err.value)


def test_truncated_gguf_is_reported(make_model, tmp_path):
    full = make_model(REFLECTION).read_bytes()
    cut = _write(tmp_path / "cut.gguf", full[: len(full) * 2 // 3])
    with pytest.raises(EngineError, match=f"cut.gguf is incomplete: {len(full) * 2 // 3:,} of "
                                          f"{len(full):,} bytes"):
        LlamaEngine(cut)


def test_an_incomplete_file_is_said_so_by_models_and_the_picker_lists_why(make_model,
                                                                          tmp_path):
    full = make_model(REFLECTION).read_bytes()
    cut = _write(tmp_path / "cut.gguf", full[: len(full) // 2])
    done = subprocess.run([sys.executable, "-m", "reflectchat", "models", str(cut)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert f"cut.gguf is incomplete: {len(full) // 2:,} of {len(full):,} bytes (a download " \
           "cut short?); download it again" in done.stderr
    notes: list[str] = []
    found = [LocalModel(cut, "llama.cpp cache", "cut", cut.name, len(full) // 2)]
    assert local_rows(detect(), 4096, found=found, notes=notes) == []
    assert notes == [f"{cut}: cut.gguf is incomplete: {len(full) // 2:,} of {len(full):,} "
                     "bytes (a download cut short?); download it again"]


def test_missing_shard_and_wrong_shard_are_reported(make_model):
    first = make_model(REFLECTION, name="split.gguf", shards=3)
    with pytest.raises(EngineError, match="pass the first shard"):
        LlamaEngine(first.with_name("split-00002-of-00003.gguf"))
    first.with_name("split-00003-of-00003.gguf").unlink()
    with pytest.raises(EngineError, match="Shard 3 of 3 is missing"):
        LlamaEngine(first)


# A process that may have 3 GiB of address space, as on a smaller machine, loads a model and
# asks for a 16M-token context: its KV cache alone (4 GiB for this model) cannot be had.
SMALL_MACHINE = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
from reflectchat.engine.errors import EngineError
from reflectchat.engine.llama import EngineSettings, LlamaEngine
try:
    LlamaEngine(sys.argv[1], EngineSettings(n_ctx=2**24))
except EngineError as exc:
    print(exc)
"""


def test_context_too_large_for_memory_is_reported(make_model):
    """The memory is capped, so the test means the same on any machine (and does not take
    the 4 GiB, which llama.cpp cleared before it failed on a larger buffer: 3-21 s)."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", SMALL_MACHINE, str(make_model(REFLECTION))],
                          capture_output=True, text=True, timeout=120, env=env)
    assert "16,777,216-token context for this model: not enough memory" in done.stdout, \
        done.stdout + done.stderr


def test_quantized_v_cache_needs_flash_attention(make_model):
    with pytest.raises(EngineError, match="needs flash attention"):
        LlamaEngine(make_model(REFLECTION), EngineSettings(type_v="q8_0"))


def test_quantized_kv_cache_with_flash_attention_runs(make_model):
    settings = EngineSettings(n_ctx=512, flash_attn=True, type_k="q8_0", type_v="q8_0")
    engine = LlamaEngine(make_model(REFLECTION), settings)
    assert run(engine)[0].raw == REFLECTION.text


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_the_engine_answers_again_after_a_stop(engine):
    """Stop mid-prompt or mid-answer, then regenerate on the same loaded model."""
    cancel = threading.Event()
    cancel.set()
    assert list(engine.generate([SYSTEM, USER], Sampling(), cancel)) == []
    cancel = threading.Event()
    generation = engine.generate([SYSTEM, USER], Sampling(), cancel)
    next(iter(generation))
    cancel.set()
    answer, stats, _ = run(engine)
    assert answer.raw == REFLECTION.text and stats.finish_reason is FinishReason.STOP


def test_loading_leaves_the_terminal_to_the_app(make_model):
    """The app paints while a model loads: the load must not point stdout and stderr (the
    terminal the app draws on) elsewhere, as llama-cpp-python's quiet mode does."""
    import os

    def target(fd: int) -> tuple[int, int]:
        info = os.fstat(fd)
        return info.st_dev, info.st_ino

    before = {fd: target(fd) for fd in (1, 2)}
    during: list[dict[int, tuple[int, int]]] = []

    def progress(_fraction: float) -> bool:
        during.append({fd: target(fd) for fd in (1, 2)})
        return True

    engine = LlamaEngine(make_model(REFLECTION), EngineSettings(n_ctx=256), progress)
    assert during and all(seen == before for seen in during)
    assert not engine.model.printing  # nothing printed while it generates either
    engine.close()


def test_a_paced_engine_is_never_faster_than_its_pace(make_model):
    import time

    engine = LlamaEngine(make_model(REFLECTION), EngineSettings(n_ctx=256, pace=100.0))
    generation = engine.generate([USER], Sampling(temperature=0.0))
    start = time.perf_counter()
    pieces = list(generation)
    elapsed = time.perf_counter() - start
    engine.close()
    n = generation.stats.completion_tokens
    assert n > 10 and pieces
    assert elapsed >= (n - 1) / 100.0  # a lower bound: a slow machine only adds to it


def test_only_the_apps_demo_is_paced():
    from reflectchat.cli.args import make_engine
    from reflectchat.cli.parser import build_parser
    from reflectchat.demo import DEMO_TOKENS_PER_SECOND
    from reflectchat.models.choice import choose_model

    args = build_parser().parse_args(["--demo"])
    demo = choose_model(None, None, demo=True)
    app_engine = make_engine(args, demo, paced=True)
    ask_engine = make_engine(args, demo)
    assert (app_engine.settings.pace, ask_engine.settings.pace) == (DEMO_TOKENS_PER_SECOND, None)
    app_engine.close()
    ask_engine.close()
