"""`reflectchat ask` saving sessions, and `reflectchat sessions ...`, as real processes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support.homes import home_env

from reflectchat.demo.scripted_model import Script

SOLVE = "Solve the equation: 2x^2 + 5x - 3 = 0"


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reflectchat", *args], input=stdin,
                          capture_output=True, text=True, timeout=120)


def sessions(*args: str) -> subprocess.CompletedProcess[str]:
    return run("sessions", *args)


def as_json(*args: str):
    result = sessions(*args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def asked_once(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[int]]:
    """Two demo answers saved (and one not), once for the module: each test gets a copy."""
    home = tmp_path_factory.mktemp("asked")
    env = {**os.environ, **home_env(home)}

    def ask(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "reflectchat", "ask", "--demo", *args],
                              capture_output=True, text=True, timeout=120, env=env)

    ids = [json.loads(ask("--json", prompt).stdout)["session"]
           for prompt in (SOLVE, "Debug this Python code")]
    assert ask("--no-save", "What is the capital of Peru?").returncode == 0
    return home / "data", ids


@pytest.fixture
def two_asked(asked_once: tuple[Path, list[int]]) -> list[int]:
    data, ids = asked_once
    shutil.copytree(data, os.environ["XDG_DATA_HOME"], dirs_exist_ok=True)
    return ids


def test_ask_records_a_session_unless_no_save(two_asked):
    listed = as_json("list")
    assert [s["id"] for s in listed] == two_asked[::-1]  # newest first
    assert [s["title"] for s in listed] == ["Debug this Python code", SOLVE]
    assert all(s["messages"] == 2 and s["model"] == "demo" for s in listed)
    shown = as_json("show", str(two_asked[0]))
    user, answer = shown["messages"]
    assert user["raw"] == SOLVE and answer["finish_reason"] == "stop"
    assert "sign error" in answer["reflections"][0] and "x = 1/2" in answer["output"]
    assert shown["settings"]["n_ctx"] > 0 and shown["settings"]["system_prompt"]
    terminal = run("ask", "--demo", SOLVE)
    assert "Saved as session 3" in terminal.stderr


def test_search_finds_the_reflection_with_the_match_marked(two_asked):
    hits = as_json("search", "sign error", "--channel", "reflection")
    assert [(h["session"], h["channel"], h["reflection"]) for h in hits] == \
        [(two_asked[0], "reflection", 1)]
    [(start, end), (start2, end2)] = hits[0]["highlights"]
    assert hits[0]["snippet"][start:end] == "sign" and hits[0]["snippet"][start2:end2] == "error"
    assert as_json("search", "sign error", "--channel", "user") == []
    text = sessions("search", "factorial")
    assert "Debug this Python code" in text.stdout
    missing = sessions("search", "zebra")
    assert missing.returncode == 0 and "Nothing matches" in missing.stderr


def test_show_prints_each_channel_labelled(two_asked):
    shown = sessions("show", str(two_asked[0])).stdout
    labels = [line for line in shown.splitlines() if line.startswith("── ")]
    assert labels == ["── 1. you ──", "── thinking ──", "── reflection 1 ──", "── output ──"]


def test_markdown_export_folds_reasoning_and_labels_reflections(two_asked, tmp_path):
    out = tmp_path / "chat.md"
    result = sessions("export", str(two_asked[0]), "-o", str(out))
    assert result.returncode == 0 and str(out) in result.stderr
    text = out.read_text()
    assert text.startswith(f"# {SOLVE}")
    assert "<details>\n<summary>Thinking</summary>" in text
    assert "<details>\n<summary>Reflection 1</summary>\n\nI made a sign error" in text
    assert "**x = 1/2**" in text.split("</details>")[-1]


def test_json_export_imports_as_the_same_session(two_asked, tmp_path):
    exported = sessions("export", str(two_asked[0]), "--format", "json").stdout
    path = tmp_path / "s.json"
    path.write_text(exported)
    new_id = as_json("import", str(path))["id"]
    assert new_id not in two_asked
    again = sessions("export", str(new_id), "--format", "json").stdout
    assert again == exported
    [hit] = [h for h in as_json("search", "sign error", "--channel", "reflection")
             if h["session"] == new_id]
    assert hit["title"] == SOLVE


@pytest.mark.parametrize(("content", "message"), [
    ("not json", "is not JSON"),
    ('{"format": "something-else"}', "not a reflectchat session export"),
    ('{"format": "reflectchat-session", "version": 99}', "newer than this reflectchat"),
    ('{"format": "reflectchat-session", "version": 1, "settings": {}}', "no 'sampling'"),
])
def test_a_bad_import_says_what_is_wrong_and_adds_nothing(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    result = sessions("import", str(path))
    assert result.returncode == 1 and message in result.stderr and str(path) in result.stderr
    assert as_json("list") == []


def test_an_import_with_a_bad_message_says_which(two_asked, tmp_path):
    data = as_json("show", str(two_asked[0]))
    data["messages"][1]["role"] = "robot"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    result = sessions("import", str(path))
    assert "messages[1].role" in result.stderr and "'robot'" in result.stderr
    assert len(as_json("list")) == 2


def test_delete_needs_confirmation(two_asked):
    refused = sessions("delete", str(two_asked[0]))  # stdin is not a terminal
    assert refused.returncode == 1 and "--yes" in refused.stderr
    assert sessions("delete", str(two_asked[0]), "--yes").returncode == 0
    assert [s["id"] for s in as_json("list")] == [two_asked[1]]
    gone = sessions("show", str(two_asked[0]))
    assert gone.returncode == 1 and f"no session {two_asked[0]}" in gone.stderr
    assert as_json("search", "sign") == []


def test_export_to_a_terminal_shows_escape_sequences_as_symbols(tmp_path):
    import os
    import pty

    from reflectchat.paths import store_file
    from reflectchat.store.records import SessionMeta, StoredMessage
    from reflectchat.store.session_store import SessionStore

    store = SessionStore.open(store_file())
    sid = store.start_session("escapes", SessionMeta("demo"), [])[0]
    store.add_messages(sid, [StoredMessage("user", "hi"), StoredMessage(
        "assistant", "x", "", [], "set \x1b]0;owned\x07 and \x1b[2J", "reflection", False,
        "stop", {})])
    store.close()
    main, secondary = pty.openpty()
    done = subprocess.run([sys.executable, "-m", "reflectchat", "sessions", "export",
                           str(sid)], stdout=secondary, stderr=subprocess.PIPE, timeout=60)
    os.close(secondary)
    shown = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    os.close(main)
    assert done.returncode == 0
    assert b"\x1b" not in shown and "␛]0;owned␇".encode() in shown
    to_file = tmp_path / "s.md"
    subprocess.run([sys.executable, "-m", "reflectchat", "sessions", "export", str(sid), "-o",
                    str(to_file)], check=True, capture_output=True, timeout=60)
    assert "\x1b]0;owned\x07" in to_file.read_text(encoding="utf-8")  # a file stays exact


@pytest.mark.parametrize(("change", "said"), [
    (lambda d: d.update(updated=1e300), "'updated' is not a time between 1970 and 2100"),
    (lambda d: d.update(created=-1e18), "'created' is not a time"),
    (lambda d: d["settings"].update(gpu_layers=10**30), "'gpu_layers' must be between -1"),
    (lambda d: d["settings"]["sampling"].update(temperature="hot"),
     "settings.sampling.temperature must be a number"),
    (lambda d: d["messages"][1]["stats"].update(tokens_per_second="fast"),
     "messages[1].stats.tokens_per_second must be a number"),
    (lambda d: d["messages"][1].update(output="a lone \ud800 surrogate"),
     "messages[1]: 'output' holds text that is not valid Unicode"),
])
def test_a_hostile_import_is_refused_whole(two_asked, tmp_path, change, said):
    data = as_json("show", str(two_asked[0]))
    change(data)
    path = tmp_path / "hostile.json"
    path.write_text(json.dumps(data))  # a lone surrogate goes out as \ud800, as JSON allows
    result = sessions("import", str(path))
    assert result.returncode == 1 and said in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert len(as_json("list")) == 2  # all or nothing: no orphan session
    assert sessions("list").returncode == 0


def test_deeply_nested_or_oversized_imports_are_refused(two_asked, tmp_path):
    nested = tmp_path / "nested.json"
    nested.write_text("[" * 100_000 + "]" * 100_000)
    result = sessions("import", str(nested))
    assert result.returncode == 1 and "nests its JSON too deeply" in result.stderr
    assert "Traceback" not in result.stderr
    data = as_json("show", str(two_asked[0]))
    data["messages"] = [data["messages"][0]] * 100_001
    huge = tmp_path / "huge.json"
    huge.write_text(json.dumps(data))
    result = sessions("import", str(huge))
    assert result.returncode == 1 and "at most 100,000 are imported" in result.stderr


def test_a_path_that_looks_like_markup_is_printed_as_it_is(two_asked, tmp_path):
    folder = tmp_path / "[bold]"  # rich would eat it as a style
    folder.mkdir()
    target = folder / "out.md"
    done = sessions("export", str(two_asked[0]), "-o", str(target))
    assert done.returncode == 0 and "Traceback" not in done.stderr
    assert str(target) in done.stderr.replace("\n", "") and target.exists()


def test_each_answers_tokens_and_time_per_channel_are_returned_stored_and_shown():
    asked = json.loads(run("ask", "--demo", "--json", SOLVE).stdout)
    stats = asked["stats"]
    channels = stats["channels"]
    assert channels["thinking"]["tokens"] > 0 and channels["reflection"]["tokens"] > 0
    assert channels["output"]["tokens"] > 0 and stats["first_output_s"] > 0
    pieces = sum(c["tokens"] for c in channels.values())  # about one piece a token
    assert 0.95 * stats["completion_tokens"] <= pieces <= stats["completion_tokens"]
    stored = as_json("show", str(asked["session"]))["messages"][1]["stats"]
    assert stored["channels"] == channels
    shown = sessions("show", str(asked["session"])).stdout
    thinking = channels["thinking"]["tokens"]
    assert f"thinking {thinking:,} tokens in " in shown and "output after " in shown
    terminal = run("ask", "--demo", SOLVE)
    assert f"thinking {thinking:,} tokens in " in terminal.stderr


def test_markdown_export_shows_what_each_reflection_changed(two_asked):
    for name in ("markdown", "md"):
        text = sessions("export", str(two_asked[0]), "--format", name).stdout
        assert "What changed with reflection 1:" in text
        assert "| before the reflection | after it |" in text
        assert "| “First the discriminant: b² - 4ac = 5² - 4·2·(-3) = 25 - 24 = 1.” |" in text
        assert "*thinking " in text and " tokens in " in text


def test_search_can_keep_to_answers_where_the_model_corrected_itself(two_asked, make_model):
    plain = make_model(Script("<|go|>", ["<think>\nthe plain path\n</think>\n\nthe end"]))
    uncorrected = json.loads(run("ask", "--model", str(plain), "--json", "go").stdout)
    corrected = as_json("search", "--corrected")
    assert {h["session"] for h in corrected} == set(two_asked)  # demo answers all reflect
    assert all(h["channel"] == "reflection" and h["reflection"] == 1 for h in corrected)
    words = as_json("search", "the", "--corrected")
    assert words and {h["session"] for h in words} == set(two_asked)
    assert uncorrected["session"] in {h["session"] for h in as_json("search", "the")}
    bare = sessions("search")
    assert bare.returncode == 1 and "--corrected" in bare.stderr


def test_the_list_names_a_models_file_not_its_folder_and_keeps_titles_on_one_line(tmp_path):
    from reflectchat.paths import store_file
    from reflectchat.store.records import SessionMeta, StoredMessage
    from reflectchat.store.session_store import SessionStore

    deep = tmp_path / "a" / "very" / "deep" / "folder" / "of" / "models"
    long_name = "DeepSeek-R1-Distill-Llama-70B-Q4_K_M-00001-of-00002.gguf"
    store = SessionStore.open(store_file())
    store.start_session("A title long enough to wrap over several lines of a narrow table "
                        "in a terminal", SessionMeta(str(deep / long_name)),
                        [StoredMessage("user", "hi")])
    store.close()
    listed = subprocess.run([sys.executable, "-m", "reflectchat", "sessions", "list"],
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, "COLUMNS": "100"})
    rows = listed.stdout.strip().splitlines()[1:]
    assert len(rows) == 1, listed.stdout  # one line: the title does not wrap
    row = rows[0]
    assert "deep" not in listed.stdout  # not the folder
    assert "DeepSeek-R1-Di" in row and "00002.gguf" in row  # both ends of the name


@pytest.mark.parametrize("columns", [80, 100])
def test_the_list_keeps_every_id_and_fits_the_terminal(columns):
    """Below ~120 columns a long title made Rich shrink every column alike: the ids that
    show, export and delete need vanished, and the rows ran past the width."""
    from reflectchat.paths import store_file
    from reflectchat.store.records import SessionMeta, StoredMessage
    from reflectchat.store.session_store import SessionStore

    store = SessionStore.open(store_file())
    made = [store.start_session(f"A long prompt about {n} idioms in French " * 3,
                                SessionMeta("gemma-3-270m-q4_k_m.gguf"),
                                [StoredMessage("user", "hi")])[0] for n in range(3)]
    store.close()
    listed = subprocess.run([sys.executable, "-m", "reflectchat", "sessions", "list"],
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, "COLUMNS": str(columns)})
    lines = listed.stdout.rstrip("\n").splitlines()
    assert lines[0].split()[0] == "id"
    assert [line.split()[0] for line in lines[1:]] == [str(n) for n in reversed(made)]
    assert all(len(line.rstrip()) <= columns for line in lines), listed.stdout


def test_stopped_cut_and_looping_answers_are_marked_in_show_and_the_markdown_export():
    from reflectchat.paths import store_file
    from reflectchat.store.records import SessionMeta, StoredMessage
    from reflectchat.store.session_store import SessionStore

    store = SessionStore.open(store_file())
    session, _ = store.start_session("stops", SessionMeta("m"), [
        StoredMessage("user", "one"),
        StoredMessage("assistant", "<think>half", thinking="half", tag_format="think",
                      finish_reason="cancelled"),
        StoredMessage("user", "two"),
        StoredMessage("assistant", "so so so", output="so so so", tag_format="think",
                      finish_reason="loop"),
        StoredMessage("user", "three"),
        StoredMessage("assistant", "all of it", output="all of it", tag_format="think",
                      finish_reason="stop")])
    store.close()
    shown = sessions("show", str(session)).stdout
    assert shown.count("(stopped: the partial answer is kept)") == 1
    assert shown.count("(stopped: the model was repeating itself)") == 1
    assert shown.count("(") == 2  # the finished answer is not marked
    exported = sessions("export", str(session)).stdout
    assert "*Stopped: the partial answer is kept.*" in exported
    assert "*Stopped: the model was repeating itself.*" in exported


def test_a_search_hit_is_named_by_the_prompt_of_its_turn_not_the_sessions_title():
    from reflectchat.paths import store_file
    from reflectchat.store.records import SessionMeta, StoredMessage
    from reflectchat.store.session_store import SessionStore

    store = SessionStore.open(store_file())
    store.start_session(SOLVE, SessionMeta("m"), [
        StoredMessage("user", SOLVE),
        StoredMessage("assistant", "x = 1/2", output="x = 1/2", tag_format="think",
                      finish_reason="stop"),
        StoredMessage("user", "Translate 'It's raining cats and dogs' to French"),
        StoredMessage("assistant", "Il pleut des cordes.", output="Il pleut des cordes.",
                      tag_format="think", finish_reason="stop")])
    store.close()
    [hit] = as_json("search", "cordes", "--channel", "output")
    assert hit["title"] == SOLVE
    assert hit["prompt"] == "Translate 'It's raining cats and dogs' to French"
    shown = sessions("search", "cordes").stdout.splitlines()[0]
    assert "Translate 'It's raining cats and dogs' to French  · output" in shown
    assert "Solve" not in shown
    [asked] = as_json("search", "raining", "--channel", "user")
    assert asked["prompt"] == "Translate 'It's raining cats and dogs' to French"


def test_ask_goes_on_with_a_saved_session(two_asked):
    """`ask --session ID` answers with the conversation so far and adds the turn to it;
    `--continue` takes the latest session."""
    first = two_asked[0]
    alone = json.loads(run("ask", "--demo", "--json", "--no-save", "Translate to French").stdout)
    done = run("ask", "--demo", "--json", "--session", str(first), "Translate to French")
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["session"] == first and "Il pleut des cordes" in answer["output"]
    assert answer["stats"]["prompt_tokens"] > alone["stats"]["prompt_tokens"]  # with history
    shown = as_json("show", str(first))
    assert [m["role"] for m in shown["messages"]] == ["user", "assistant"] * 2
    assert shown["messages"][2]["raw"] == "Translate to French"
    latest = json.loads(run("ask", "--demo", "--json", "--continue", "Debug this").stdout)
    assert latest["session"] == first  # the session last added to
    assert len(as_json("show", str(first))["messages"]) == 6
    missing = run("ask", "--demo", "--session", "999", "q")
    assert missing.returncode == 1 and "There is no session 999" in missing.stderr
    both = run("ask", "--demo", "--session", str(first), "--continue", "q")
    assert both.returncode == 2 and "not allowed with" in both.stderr
