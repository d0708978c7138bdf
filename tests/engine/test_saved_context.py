"""A session's context saved with it: `ask --session` puts it back and evaluates only the rest,
and the answer is the one a fresh evaluation gives; a state that does not match (another
context size, a damaged or swapped file) is refused with its reason, never loaded."""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from support.homes import home_env

from reflectchat.demo.scripted_model import Script, write_scripted_gguf
from reflectchat.engine import saved_context
from reflectchat.engine.base import ChatMessage, Sampling
from reflectchat.engine.llama import EngineSettings, LlamaEngine
from reflectchat.engine.saved_context import context_file
from reflectchat.paths import config_file


def ask(model: Path, *args: str, env: dict[str, str] | None = None) -> tuple[dict, str]:
    done = subprocess.run([sys.executable, "-m", "reflectchat", "ask", "--json", "--model",
                           str(model), "--temperature", "0", *args], capture_output=True,
                          text=True, timeout=300,
                          env={**os.environ, "COLUMNS": "200", **(env or {})})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout), done.stderr


def test_a_resumed_answer_is_the_answer_of_a_fresh_evaluation(real_model):
    first, _ = ask(real_model, "--max-tokens", "32", "Name three primary colors.")
    session = first["session"]
    assert context_file(session).stat().st_mode & 0o777 == 0o600
    follow = ("--max-tokens", "32", "--no-save", "--session", str(session), "And three more?")
    resumed, said = ask(real_model, *follow)
    assert "context restored" in said
    restored = resumed["context_restored"]["tokens"]
    assert restored > first["stats"]["prompt_tokens"]  # the first prompt and part of its answer
    context_file(session).unlink()
    fresh, said = ask(real_model, *follow)
    assert "context not restored: none was saved" in said
    assert resumed["raw"] == fresh["raw"]  # token for token (greedy)
    assert resumed["stats"]["completion_tokens"] == fresh["stats"]["completion_tokens"]
    assert fresh["stats"]["prompt_evaluated"] == fresh["stats"]["prompt_tokens"]
    assert resumed["stats"]["prompt_evaluated"] < fresh["stats"]["prompt_tokens"] - 20


def _damaged(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-100])  # cut short, as a full disk leaves it


def _garbage(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-50:] = os.urandom(50)  # the header intact, the state not
    path.write_bytes(bytes(data))


COUNTING = Script("<|go|>", ["Counting to three: one, two, three."])


@pytest.fixture(scope="module")
def two_sessions(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict, dict]:
    """Two sessions asked once for the module, each with its saved context: (their home,
    the model, the first answer, the other)."""
    home = tmp_path_factory.mktemp("two-sessions")
    model = write_scripted_gguf(home / "model.gguf", [COUNTING])
    first, _ = ask(model, "--ctx", "2048", "Count", env=home_env(home))
    other, _ = ask(model, "--ctx", "2048", "Count again", env=home_env(home))
    return home, model, first, other


@pytest.fixture
def two_saved(two_sessions) -> tuple[Path, dict, dict]:
    """A copy of the two sessions and their contexts in this test's home."""
    home, model, first, other = two_sessions
    for kind in ("DATA", "CACHE"):
        shutil.copytree(home / kind.lower(), os.environ[f"XDG_{kind}_HOME"], dirs_exist_ok=True)
    return model, first, other


@pytest.mark.parametrize(("spoil", "flags", "why"), [
    (None, ["--ctx", "1024"], "it was saved with another model file, template, context size"),
    (_damaged, [], "the saved file is damaged"),
    (_garbage, [], "the saved file is damaged"),
    ("swap", [], "the saved file belongs to another session"),
    ("fifo", [], "the saved file is damaged"),  # a FIFO would block a plain read
    ("other-model", [], "it was saved with another model file, template, context size"),
])
def test_a_state_that_does_not_match_is_never_loaded(two_saved, make_model, spoil, flags, why):
    model, first, other = two_saved
    path = context_file(first["session"])
    if spoil == "swap":
        shutil.copy(context_file(other["session"]), path)
    elif spoil == "fifo":
        path.unlink()
        os.mkfifo(path)
    elif spoil == "other-model":  # another quant of it, say: the same answers, another file
        model = make_model(COUNTING, name="other.gguf", context_length=8192)
    elif spoil is not None:
        spoil(path)
    answer, said = ask(model, "--ctx", "2048", *flags, "--no-save", "--session",
                       str(first["session"]), "More")
    assert f"context not restored: {why}" in said
    assert answer["context_restored"]["tokens"] == 0
    assert answer["stats"]["prompt_evaluated"] == answer["stats"]["prompt_tokens"]
    assert answer["output"] == "Counting to three: one, two, three."


def test_deleting_a_session_deletes_its_saved_context(make_model):
    model = make_model(COUNTING)
    first, _ = ask(model, "--ctx", "2048", "Count")
    saved = context_file(first["session"])
    assert saved.exists()
    done = subprocess.run([sys.executable, "-m", "reflectchat", "sessions", "delete",
                           str(first["session"]), "--yes"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert not saved.exists()


def test_saved_contexts_stay_within_their_budget_least_recently_used_first(make_model):
    model = make_model(COUNTING)
    first, _ = ask(model, "--ctx", "2048", "Count")
    one = context_file(first["session"]).stat().st_size
    config_file().parent.mkdir(parents=True, exist_ok=True)
    config_file().write_text(f'[contexts]\nbudget = "{2.5 * one / 2**20:.6f}M"\n')
    second, _ = ask(model, "--ctx", "2048", "Count again")
    ask(model, "--ctx", "2048", "--no-save", "--session", str(first["session"]), "More")
    third, _ = ask(model, "--ctx", "2048", "Count once more")  # one of three must go
    kept = {s["session"] for s in (first, second, third) if context_file(s["session"]).exists()}
    assert kept == {first["session"], third["session"]}  # the first was used last
    shown = subprocess.run([sys.executable, "-m", "reflectchat", "sessions", "contexts"],
                           capture_output=True, text=True, timeout=60)
    assert shown.stdout.startswith("2 saved contexts, ") and "budget" in shown.stdout
    subprocess.run([sys.executable, "-m", "reflectchat", "sessions", "contexts", "--clear"],
                   capture_output=True, text=True, timeout=60, check=True)
    assert not any(context_file(s["session"]).exists() for s in (first, second, third))


def test_a_save_killed_midway_leaves_the_last_whole_state_and_nothing_that_loads(real_model):
    """kill -9 while a save writes: the file is written under another name, then renamed, so
    the state saved before stays whole and the cut one is never read. The save is caught
    mid-write by a FIFO put where its partial file goes: the test reads nothing, so the
    writer stops once the pipe holds 64 KiB of a state of about a MiB."""
    first, _ = ask(real_model, "--max-tokens", "20", "Name three colors.")
    path = context_file(first["session"])
    before = path.read_bytes()
    assert len(before) > 256 * 1024
    going_on = subprocess.Popen(
        [sys.executable, "-m", "reflectchat", "ask", "--json", "--model", str(real_model),
         "--temperature", "0", "--max-tokens", "20", "--session", str(first["session"]),
         "And three more?"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    partial = path.with_name(f"{path.name}.{going_on.pid}.partial")
    os.mkfifo(partial)
    reader = os.open(partial, os.O_RDONLY | os.O_NONBLOCK)
    try:
        ready, _, _ = select.select([reader], [], [], 300)  # the save has begun writing
        assert ready, "the answer's save never began"
    finally:
        going_on.kill()
        going_on.wait()
        os.close(reader)
    assert going_on.returncode == -9
    assert path.read_bytes() == before  # the last whole state, untouched
    _, said = ask(real_model, "--max-tokens", "20", "--no-save", "--session",
                  str(first["session"]), "Again?")
    assert "context restored" in said  # that state, checked and used; the cut one never read


def test_saves_of_one_session_at_once_each_succeed_and_leave_a_state_that_loads(make_model):
    """An answer's save can still be writing when the next answer of the session ends and
    saves (a slow disk): saves of one session from several threads at once all succeed, and
    what is left is a whole state another run of the model puts back."""
    model = make_model(COUNTING)
    engine = LlamaEngine(model, EngineSettings(n_ctx=2048))
    list(engine.generate([ChatMessage("user", "Count")], Sampling(temperature=0.0)))
    start, failures = threading.Barrier(6), []

    def save() -> None:
        start.wait()
        for _ in range(4):
            try:
                saved_context.keep(engine, 1, 1024**3)
            except Exception as exc:  # any failure is the finding
                failures.append(exc)

    threads = [threading.Thread(target=save) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert [p.name for p in context_file(1).parent.iterdir()] == ["session-1.state"]
    engine.close()
    again = LlamaEngine(model, EngineSettings(n_ctx=2048))
    assert saved_context.resume(again, 1)["tokens"] > 0
    again.close()


def test_a_context_that_cannot_be_saved_is_one_line_and_the_answer_and_session_stand(
        make_model):
    model = make_model(COUNTING)
    folder = context_file(1).parent
    folder.parent.mkdir(parents=True, exist_ok=True)
    folder.write_text("another tool's file where the folder goes")
    answer, said = ask(model, "--ctx", "2048", "Count")
    assert answer["output"] == "Counting to three: one, two, three."
    assert "reflectchat: The model's context was not saved with the session (" in said
    assert "Traceback" not in said
    follow, _ = ask(model, "--ctx", "2048", "--session", str(answer["session"]), "More")
    assert follow["session"] == answer["session"]
    assert folder.read_text() == "another tool's file where the folder goes"
