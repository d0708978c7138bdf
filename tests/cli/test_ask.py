"""`reflectchat ask` as a user runs it: a real process, the real llama.cpp, generated GGUFs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from reflectchat.demo.answers import STARTERS
from reflectchat.demo.scripted_model import Control, Piece, Script

ESCAPES = Script("<|go|>", [
    Control("<thinking>"), "look", Control("</thinking>"), Control("<output>"),
    "\x1b]0;owned\x07 then \x1b[2J [bold]not bold[/bold] and \r overwrite ",
    Piece("-" * 40), Control("</output>"),
])


def ask(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reflectchat", "ask", *args], input=stdin, capture_output=True,
        text=True, timeout=120, env={**os.environ, "COLUMNS": "200"},
    )


def test_demo_answers_with_reflections_as_json():
    result = ask("--demo", "--json", "Solve the equation: 2x^2 + 5x - 3 = 0")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert set(answer) == {"thinking", "reflections", "output", "raw", "finish_reason", "stats",
                           "session"}
    assert isinstance(answer["session"], int)
    assert "x = 1/2" in answer["output"] and "x = −3" in answer["output"]
    assert answer["reflections"] and "sign error" in answer["reflections"][0]
    assert "<reflection>" not in answer["thinking"] and answer["thinking"]
    assert answer["raw"].startswith("<thinking>") and answer["raw"].rstrip().endswith("</output>")
    assert answer["finish_reason"] == "stop"
    assert answer["stats"]["completion_tokens"] > 100


@pytest.mark.parametrize(("prompt", "expected"), [
    ("Translate 'It's raining cats and dogs' to French", "Il pleut des cordes"),
    ("Debug this Python code", "factorial(n - 1)"),
    ("What is the capital of Peru?", "demo model"),
])
def test_demo_has_several_recorded_answers(prompt, expected):
    answer = json.loads(ask("--demo", "--json", prompt).stdout)
    assert expected in answer["output"]
    assert len(answer["reflections"]) == 1


def test_terminal_output_is_labelled_and_marks_the_demo():
    result = ask("Solve the equation: 2x^2 + 5x - 3 = 0")  # no model: the demo
    assert result.returncode == 0
    assert "demo model" in result.stderr
    labels = [line for line in result.stdout.splitlines() if line.startswith("── ")]
    assert labels == ["── thinking ──", "── reflection 1 ──", "── thinking ──", "── output ──"]
    assert "\n\n── reflection 1 ──\n" in result.stdout
    assert "stop" in result.stderr and "tok/s" in result.stderr


def test_prompt_from_stdin_and_model_from_path(make_model):
    model = make_model(Script("<|go|>", ["<think>plan</think> final words"]))
    result = ask("--model", str(model), "--json", stdin="question on stdin\n")
    answer = json.loads(result.stdout)
    assert (answer["thinking"], answer["output"]) == ("plan", "final words")


def test_format_flag_overrides_auto(make_model):
    model = make_model(Script("<|go|>", ["<think>plan</think> final words"]))
    answer = json.loads(ask("--model", str(model), "--format", "plain", "--json", "q").stdout)
    assert answer["output"] == "<think>plan</think> final words"


def test_max_tokens_reports_length(make_model):
    model = make_model(Script("<|go|>", ["one two three four five six"]))
    result = ask("--model", str(model), "--max-tokens", "2", "--json", "q")
    answer = json.loads(result.stdout)
    assert result.returncode == 0
    assert answer["finish_reason"] == "length" and answer["stats"]["completion_tokens"] == 2


def test_model_text_is_shown_literally_in_the_terminal(make_model):
    result = ask("--model", str(make_model(ESCAPES)), "q")
    out = result.stdout
    assert "\x1b" not in out and "\x07" not in out and "\r" not in out
    assert "␛]0;owned␇ then ␛[2J [bold]not bold[/bold] and ␍ overwrite " + "-" * 40 in out


def test_json_keeps_the_exact_raw_text(make_model):
    answer = json.loads(ask("--model", str(make_model(ESCAPES)), "--json", "q").stdout)
    assert answer["raw"] == ESCAPES.text


@pytest.mark.parametrize(("args", "message"), [
    (["--model", "/nonexistent/model.gguf"], "Model file not found: /nonexistent/model.gguf"),
    (["--model", "no-such-model"], "is neither a GGUF file nor a catalog model"),
    (["--model", "qwq-32b"], "No quant of qwq-32b is downloaded yet"),
    (["--model", "qwq-32b", "--quant", "Q4_K_M"], "hf download Qwen/QwQ-32B-GGUF"),
    (["--demo", "--cache-type-v", "q4_0"], "needs flash attention"),
])
def test_failures_exit_nonzero_with_one_clear_line(args, message):
    result = ask(*args, "--json", "q")
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_empty_prompt_is_refused():
    result = ask(stdin="  \n")
    assert result.returncode == 1 and "no prompt" in result.stderr


def test_help_lists_the_model_and_runtime_options():
    out = subprocess.run([sys.executable, "-m", "reflectchat", "ask", "--help"],
                         capture_output=True, text=True, check=True).stdout
    for flag in ("--model", "--quant", "--demo", "--json", "--format", "--gpu-layers", "--ctx",
                 "--max-tokens", "--system", "--temperature", "--flash-attn", "--tensor-split"):
        assert flag in out


def test_help_does_not_import_llama_cpp_rich_or_package_metadata():
    """The parser every command builds loads none of them; `importlib.metadata` and looking
    reflectchat's version up cost each command about 40 ms before `--version` asked for it."""
    code = ("import sys; from reflectchat.cli.parser import build_parser; build_parser(); "
            "print(sorted(m for m in ('llama_cpp', 'rich', 'textual', 'huggingface_hub', "
            "'importlib.metadata') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_version_is_the_installed_packages():
    from importlib.metadata import version

    done = subprocess.run([sys.executable, "-m", "reflectchat", "--version"],
                          capture_output=True, text=True)
    assert (done.returncode, done.stdout) == (0, f"reflectchat {version('reflectchat')}\n")


def test_demo_model_is_generated_into_the_cache_dir_once():
    cache = Path(os.environ["XDG_CACHE_HOME"], "reflectchat")
    for seeded in cache.glob("demo-*.gguf"):  # a first run: no demo model yet
        seeded.unlink()
    first = json.loads(ask("--demo", "--json", "hi").stdout)
    [cached] = cache.glob("demo-*.gguf")
    assert cached.read_bytes()[:4] == b"GGUF"
    written = cached.stat().st_mtime_ns
    again = json.loads(ask("--demo", "--json", "hi").stdout)
    assert cached.stat().st_mtime_ns == written  # reused, not written again
    assert again["output"] == first["output"] and first["output"]


def test_catalog_model_is_found_in_the_hugging_face_cache(make_model):
    """A GGUF already in the shared HF cache runs under its catalog id, with its tag format."""
    snapshot = Path(os.environ["HF_HOME"], "hub", "models--Qwen--QwQ-32B-GGUF")
    (snapshot / "refs").mkdir(parents=True)
    (snapshot / "refs" / "main").write_text("0123abcd")
    model = make_model(Script("<|go|>", ["<think>\nweighing it\n</think>\n\nForty-two."]))
    target = snapshot / "snapshots" / "0123abcd" / "qwq-32b-q6_k.gguf"
    target.parent.mkdir(parents=True)
    model.rename(target)
    result = ask("--model", "qwq-32b", "--json", "q")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert (answer["thinking"], answer["output"]) == ("weighing it", "Forty-two.")
    missing = ask("--model", "qwq-32b", "--quant", "Q8_0", "--json", "q")
    assert "qwq-32b Q8_0 is not downloaded (32.4 GiB)" in missing.stderr


UNOPENED = Script("<|go|>", ["Adding 2 and 3 ", "gives 5.\n", Control("</think>"),
                             "\n\nThe sum is 5."])


def test_thinking_its_prompt_opened_is_printed_saved_and_returned_as_thinking(make_model):
    model = str(make_model(UNOPENED))
    shown = ask("--model", model, "--format", "think", "q")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert [line for line in lines if line.startswith("── ")] == ["── thinking ──",
                                                                   "── output ──"]
    assert lines[lines.index("── thinking ──") + 1] == "Adding 2 and 3 gives 5."
    assert lines[-1] == "The sum is 5."
    answer = json.loads(ask("--model", model, "--format", "think", "--json", "q").stdout)
    assert (answer["thinking"], answer["output"]) == ("Adding 2 and 3 gives 5.", "The sum is 5.")
    stored = subprocess.run([sys.executable, "-m", "reflectchat", "sessions", "show",
                             str(answer["session"]), "--json"], capture_output=True, text=True,
                            check=True)
    message = json.loads(stored.stdout)["messages"][1]
    assert (message["thinking"], message["output"], message["prefilled"]) == \
        ("Adding 2 and 3 gives 5.", "The sum is 5.", True)
    auto = ask("--model", model, "q")  # a GGUF by path: auto, streamed at once, then noted
    assert "the text above was thinking: the model closed it with </think>" in auto.stdout
    assert auto.stdout.index("Adding 2 and 3") < auto.stdout.index("the text above was")
    plain = ask("--model", model, "--format", "plain", "q")  # no reasoning: streamed as is
    assert [line for line in plain.stdout.splitlines() if line.startswith("── ")] == \
        ["── output ──"]


def test_bad_models_get_one_clear_sentence(make_model, tmp_path):
    path = make_model(Script("<|go|>", ["hi"]))
    data = path.read_bytes()  # the same file, claiming an architecture llama.cpp lacks
    key = b"general.architecture" + (8).to_bytes(4, "little") + (5).to_bytes(8, "little")
    unknown = tmp_path / "future.gguf"
    unknown.write_bytes(data.replace(key + b"llama", key + b"lamba", 1))
    result = ask("--model", str(unknown), "q")
    assert result.returncode == 1
    assert "'lamba' model, an architecture this llama.cpp" in result.stderr
    assert "Traceback" not in result.stderr
    raising = make_model(Script("<|go|>", ["hi"]), name="raising.gguf",
                         template="{{ raise_exception('System role not supported') }}")
    result = ask("--model", str(raising), "--no-save", "q")  # it cannot render any chat
    assert result.returncode == 0
    assert "The chat template in raising.gguf cannot be used: System role not supported. " \
           "Using llama.cpp's llama2 template instead" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_model_that_never_ends_its_turn_stops_at_the_limit_and_says_so(make_model):
    endless = make_model(Script("<|go|>", ["and on ", "and on "[:-1] + "!"], loops=True))
    result = ask("--model", str(endless), "--max-tokens", "20", "--no-save", "q")
    assert result.returncode == 0
    assert "20 answer tokens" in result.stderr and "length" in result.stderr
    assert "reached its limit of 20 tokens" in result.stderr and "--max-tokens N" in result.stderr
    runaway = ask("--model", str(endless), "--ctx", "1024", "--no-loop-stop", "--json",
                  "--no-save", "q")
    stats = json.loads(runaway.stdout)["stats"]  # no limit given: the room in the context
    assert stats["finish_reason"] == "length"
    assert stats["prompt_tokens"] + stats["completion_tokens"] == 1024


def test_a_model_repeating_itself_is_stopped_and_says_so(make_model):
    endless = make_model(Script("<|go|>", ["and on ", "and on "[:-1] + "!"], loops=True))
    result = ask("--model", str(endless), "--ctx", "16384", "--no-save", "q")
    assert result.returncode == 0
    assert "Stopped: the model was repeating itself." in result.stderr
    as_json = ask("--model", str(endless), "--ctx", "16384", "--json", "--no-save", "q")
    answer = json.loads(as_json.stdout)
    assert answer["finish_reason"] == "loop"
    assert answer["stats"]["completion_tokens"] < 200  # caught early, not at the context's end


def test_the_shell_sees_an_app_that_crashed_as_failed(monkeypatch):
    """Textual sets the app's return code to 1 when a handler raises; the command must pass
    that on instead of 0."""
    from reflectchat.cli import chat
    from reflectchat.cli.parser import build_parser
    from reflectchat.ui.app import ReflectChatApp

    class Crashed(ReflectChatApp):
        def run(self, *args, **kwargs) -> None:  # what Textual leaves after an exception
            self._return_code = 1

    class Closed(ReflectChatApp):
        def run(self, *args, **kwargs) -> None:  # a user who quit
            self._return_code = 0

    args = build_parser().parse_args(["--demo"])
    monkeypatch.setattr("reflectchat.ui.app.ReflectChatApp", Crashed)
    assert chat.run(args) == 1
    monkeypatch.setattr("reflectchat.ui.app.ReflectChatApp", Closed)
    assert chat.run(args) == 0


def test_a_reader_that_leaves_the_pipe_ends_the_command_quietly(make_model):
    """`reflectchat ask ... | head`: the rest is not wanted, and that is no error. The answer
    is far longer than a pipe holds (8,000 tokens: over 100 KB of JSON against a 64 KiB pipe),
    so it writes on after `head` has left."""
    endless = make_model(Script("<|go|>", ["and on and on, ", "and on again! "], loops=True))
    piped = subprocess.run(
        f"{sys.executable} -m reflectchat ask --model {endless} --json --no-save "
        "--no-loop-stop --max-tokens 8000 --ctx 16384 q | head -c 10", shell=True,
        capture_output=True,
        text=True, timeout=300)
    assert len(piped.stdout.encode()) == 10
    assert "Traceback" not in piped.stderr and "BrokenPipe" not in piped.stderr


@pytest.mark.parametrize("prompt", STARTERS)
def test_the_demo_with_a_thinking_budget_still_answers_the_question_asked(prompt):
    """The demo replays recordings: after the engine's closer it jumped to another recording
    (a translation answered with the quadratic equation's solution)."""
    whole = json.loads(ask("--demo", "--no-save", "--json", prompt).stdout)
    for cut in (["--thinking-budget", "20"], ["--effort", "off"]):
        result = ask("--demo", "--no-save", "--json", *cut, prompt)
        assert result.returncode == 0, result.stderr
        answer = json.loads(result.stdout)
        assert answer["output"] == whole["output"]
        assert len(answer["thinking"]) < len(whole["thinking"])
        assert answer["stats"]["channels"]["thinking"]["tokens"] <= 21
