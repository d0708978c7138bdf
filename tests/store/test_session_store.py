"""The session store on real SQLite files: privacy, search, migrations, bad files."""

from __future__ import annotations

import re
import sqlite3
import stat

import pytest
from support.sqlite_file import pragma

from reflectchat.engine.base import Sampling
from reflectchat.paths import store_file
from reflectchat.store.records import MARK_END, MARK_START, SessionMeta, StoredMessage
from reflectchat.store.schema import APPLICATION_ID, MIGRATIONS
from reflectchat.store.session_store import SessionStore, StoreError

META = SessionMeta("reflection-llama-3.1-70b", "Q4_K_M", "Think first.",
                   Sampling(temperature=0.3, seed=7), gpu_layers=40, n_ctx=8192)


def answer(thinking: str, reflections: list[str], output: str) -> StoredMessage:
    raw = f"<thinking>{thinking}" + "".join(f"<reflection>{r}</reflection>" for r in reflections) \
        + f"</thinking><output>{output}</output>"
    return StoredMessage("assistant", raw, thinking, reflections, output, "reflection",
                         finish_reason="stop", stats={"completion_tokens": 42})


def fill(store: SessionStore) -> int:
    sid = store.start_session("Quadratics", META, [])[0]
    store.add_messages(sid, [
        StoredMessage("user", "Solve 2x² + 5x − 3 = 0"),
        answer("The discriminant is 25 - 24 = 1.",
               ["I made a sign error: the discriminant is 49, not 1."], "x = 1/2 or x = −3"),
    ])
    return sid


def test_store_is_private_and_in_wal_mode(tmp_path):
    path = tmp_path / "data" / "reflectchat" / "sessions.db"
    store = SessionStore.open(path)
    fill(store)
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    for f in path.parent.iterdir():  # the database, its WAL and shared-memory files
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
    assert {f.name for f in path.parent.iterdir()} >= {"sessions.db", "sessions.db-wal"}
    assert pragma(path, "PRAGMA journal_mode") == "wal"
    assert store_file().parent.name == "reflectchat"


def test_sessions_and_messages_come_back_exactly(tmp_path):
    store = SessionStore.open(tmp_path / "s.db")
    sid = fill(store)
    odd = "\x1b[2J\x1b]0;owned\x07 ⚠ \r\n [bold]x[/bold] \x9b31m <reflection>"
    store.add_messages(sid, [StoredMessage("user", odd)])
    store.close()
    store = SessionStore.open(tmp_path / "s.db")
    [info] = store.sessions()
    assert (info.id, info.title, info.meta, info.messages) == (sid, "Quadratics", META, 3)
    messages = store.messages(sid)
    assert [m.seq for m in messages] == [1, 2, 3]
    assert messages[1].reflections == ["I made a sign error: the discriminant is 49, not 1."]
    assert messages[1].stats == {"completion_tokens": 42}
    assert messages[2].raw == odd


def test_newest_first_and_rename_delete(tmp_path):
    store = SessionStore.open(tmp_path / "s.db")
    first, second = fill(store), fill(store)
    assert [s.id for s in store.sessions()] == [second, first]
    store.add_messages(first, [StoredMessage("user", "one more")])
    assert [s.id for s in store.sessions()] == [first, second]
    store.rename(second, "Renamed")
    assert store.session(second).title == "Renamed"
    store.delete(first)
    assert [s.id for s in store.sessions()] == [second]
    assert store.messages(first) == []
    with pytest.raises(StoreError, match="no session"):
        store.delete(first)
    pragma(tmp_path / "s.db", "INSERT INTO texts_fts (texts_fts) VALUES ('integrity-check')")


def test_a_deleted_sessions_id_never_names_another_session(tmp_path):
    store = SessionStore.open(tmp_path / "s.db")
    first, second = fill(store), fill(store)
    store.delete(second)  # the newest: SQLite alone would give its id again
    store.close()
    store = SessionStore.open(tmp_path / "s.db")  # and after a restart
    third = fill(store)
    assert third == second + 1 and [s.id for s in store.sessions()] == [third, first]


def test_search_by_channel_with_highlighted_matches(tmp_path):
    store = SessionStore.open(tmp_path / "s.db")
    sid = fill(store)
    hits = store.search("discriminant")
    assert {(h.channel, h.reflection) for h in hits} == {("thinking", 0), ("reflection", 1)}
    [hit] = store.search("discriminant", ["reflection"])
    assert (hit.session_id, hit.seq, hit.title) == (sid, 2, "Quadratics")
    assert f"{MARK_START}discriminant{MARK_END} is 49" in hit.snippet
    assert [h.channel for h in store.search("solve", ["user"])] == ["user"]
    assert store.search("solve", ["output", "thinking"]) == []
    assert [h.channel for h in store.search("sign err")] == ["reflection"]  # prefix of a word
    assert store.search("discriminant sign")[0].channel == "reflection"  # every word must match


@pytest.mark.parametrize("query", ['"', "x AND", "NEAR(", "-sign", "*", "col:x", "'; DROP"])
def test_any_typed_text_is_a_valid_search(tmp_path, query):
    """No FTS5 syntax error, whatever the user types: operators and quotes are text, so the
    search finds what its words alone find."""
    store = SessionStore.open(tmp_path / "s.db")
    fill(store)
    words = re.findall(r"\w+", query)
    assert store.search(query) == (store.search(" ".join(words)) if words else [])


def test_search_ignores_accents_and_shows_control_characters_literally(tmp_path):
    store = SessionStore.open(tmp_path / "s.db")
    sid = store.start_session("t", META, [])[0]
    store.add_messages(sid, [StoredMessage("user", "Mon résumé \x1b[31mest\x02 prêt\x03")])
    [hit] = store.search("resume")
    assert hit.snippet == f"Mon {MARK_START}résumé{MARK_END} ␛[31mest␂ prêt␃"


def test_checkpoints_replace_the_searchable_text(tmp_path):
    store = SessionStore.open(tmp_path / "s.db")
    sid = store.start_session("t", META, [])[0]
    _, answer_id = store.add_messages(sid, [StoredMessage("user", "q"),
                                            StoredMessage("assistant", "", finish_reason="x")])
    store.update_message(answer_id, answer("draft words", [], ""))
    store.update_message(answer_id, answer("final words", ["checked"], "done"))
    assert store.search("draft") == []
    assert len(store.search("words")) == 1
    pragma(tmp_path / "s.db", "INSERT INTO texts_fts (texts_fts) VALUES ('integrity-check')")


def test_a_version_1_store_is_migrated_and_its_messages_become_searchable(tmp_path):
    path = tmp_path / "s.db"
    db = sqlite3.connect(path)
    db.executescript(MIGRATIONS[0])
    db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    db.execute("PRAGMA user_version = 1")
    db.execute("INSERT INTO sessions (id, title, created, updated) VALUES (1, 'old', 1, 2)")
    db.execute("INSERT INTO messages (session_id, seq, role, raw, created) VALUES "
               "(1, 1, 'user', 'an old \x1b question', 1)")
    db.execute("INSERT INTO messages (session_id, seq, role, reflections, output, created) "
               "VALUES (1, 2, 'assistant', '[\"first\", \"an old mistake\"]', 'fine', 1)")
    db.commit()
    db.close()
    store = SessionStore.open(path)
    assert pragma(path, "PRAGMA user_version") == len(MIGRATIONS)
    assert [(h.channel, h.reflection) for h in store.search("old", ["reflection"])] == \
        [("reflection", 2)]
    assert "␛" in store.search("question")[0].snippet
    assert store.sessions()[0].title == "old"


@pytest.mark.parametrize("content", [
    b"this is not a database, it is a text file the user put here\n" * 100,
    b"SQLite format 3\x00" + b"\xff" * 4000,
])
def test_an_unreadable_file_is_moved_aside_and_a_fresh_store_starts(tmp_path, content):
    path = tmp_path / "sessions.db"
    path.write_bytes(content)
    store = SessionStore.open(path)
    assert store.notice and "could not be read" in store.notice and str(path) in store.notice
    [moved] = tmp_path.glob("sessions.db.unreadable-*")
    assert moved.read_bytes() == content  # nothing is lost
    assert moved.name in store.notice
    fill(store)
    assert len(store.sessions()) == 1


def test_a_damaged_store_is_moved_aside(tmp_path):
    path = tmp_path / "sessions.db"
    store = SessionStore.open(path)
    for _ in range(50):
        fill(store)
    pragma(path, "PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    data = bytearray(path.read_bytes())
    page = 4096
    data[3 * page: 6 * page] = b"\x5a" * (3 * page)  # overwrite pages in the middle
    path.write_bytes(bytes(data))
    store = SessionStore.open(path)
    assert store.notice is not None
    assert store.sessions() == []


def test_a_foreign_sqlite_database_is_moved_aside(tmp_path):
    path = tmp_path / "sessions.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE bookmarks (url TEXT)")
    db.commit()
    db.close()
    store = SessionStore.open(path)
    assert "not a reflectchat session store" in (store.notice or "")


@pytest.mark.parametrize("target_exists", [True, False])
def test_a_store_that_is_a_link_is_refused_and_nothing_changes_through_it(tmp_path,
                                                                         target_exists):
    other = tmp_path / "elsewhere" / "notes.txt"
    other.parent.mkdir()
    if target_exists:
        other.write_text("my notes")
        other.chmod(0o644)
    path = tmp_path / "data" / "sessions.db"
    path.parent.mkdir()
    path.symlink_to(other)
    with pytest.raises(StoreError, match=f"is a link to {re.escape(str(other))}; reflectchat "
                                         "keeps its history in a file of its own"):
        SessionStore.open(path)
    assert path.is_symlink()  # not moved aside either: the user decides
    if target_exists:
        assert other.read_text() == "my notes"
        assert stat.S_IMODE(other.stat().st_mode) == 0o644
    else:
        assert not other.exists()  # a dangling link did not create its target


def test_a_store_from_a_newer_version_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "sessions.db"
    SessionStore.open(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    db.commit()
    db.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match="newer reflectchat"):
        SessionStore.open(path)
    assert path.read_bytes() == before
    assert list(tmp_path.glob("*.unreadable-*")) == []


def test_a_damaged_cell_does_not_crash_a_view(tmp_path):
    """One byte changed in a stored stats cell (SQLite's quick_check still passes): the
    message is read with that field empty and named, and the views carry on."""
    import subprocess
    import sys

    from reflectchat.store.turns import conversation_from

    store = SessionStore.open(store_file())
    sid = store.start_session("damaged", SessionMeta("demo"), [])[0]
    store.add_messages(sid, [StoredMessage("user", "q"), StoredMessage(
        "assistant", "<output>a</output>", "", [], "a", "reflection", False, "stop",
        {"prompt_tokens": 3, "completion_tokens": 5, "tokens_per_second": 10.0})])
    store.close()
    db = sqlite3.connect(store_file())
    db.execute("UPDATE messages SET stats = replace(stats, '\"prompt_tokens\": 3,', "
               "'\"prompt_tokens\": 3;') WHERE role = 'assistant'")
    db.execute("""UPDATE sessions SET sampling = '{"temperature": "hot", "top_k": 1.5}'""")
    db.commit()
    assert db.execute("PRAGMA quick_check").fetchone()[0] == "ok"
    db.close()
    store = SessionStore.open(store_file())
    [question, answer] = store.messages(sid)
    assert answer.damaged == ("stats",) and answer.stats is None and answer.output == "a"
    info = store.session(sid)
    assert info.meta.sampling == Sampling()  # the hostile values left the defaults
    conversation = conversation_from(info, [question, answer])
    assert conversation.turns[0].answer.output == "a"
    for command in (["show", str(sid)], ["export", str(sid)], ["show", str(sid), "--json"]):
        done = subprocess.run([sys.executable, "-m", "reflectchat", "sessions", *command],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    shown = subprocess.run([sys.executable, "-m", "reflectchat", "sessions", "show", str(sid)],
                           capture_output=True, text=True, timeout=60)
    assert "could not be read in full (damaged: stats)" in shown.stderr


def test_a_session_starts_with_its_first_messages_or_not_at_all(tmp_path):
    store = SessionStore.open(tmp_path / "s.db")
    sid, ids = store.start_session("Hello", META, [StoredMessage("user", "hi"),
                                                   answer("", [], "")])
    assert [m.role for m in store.messages(sid)] == ["user", "assistant"] and len(ids) == 2
    with pytest.raises(sqlite3.IntegrityError):  # a message the schema refuses
        store.start_session("Broken", META, [StoredMessage("user", "hi"),
                                             StoredMessage("system", "not a chat role")])
    assert [s.title for s in store.sessions()] == ["Hello"]  # no empty session left behind
    store.close()


def test_checkpoints_are_indexed_once_when_the_answer_ends_or_after_a_crash(tmp_path):
    """A streaming answer's checkpoints skip the search index (rebuilding it every half second
    cost the token loop); the final text is indexed, and an answer a killed process left
    unfinished is indexed when the store is next opened."""
    store = SessionStore.open(tmp_path / "s.db")
    sid = store.start_session("t", META, [])[0]
    _, finished = store.add_messages(sid, [StoredMessage("user", "q"),
                                           StoredMessage("assistant", "", finish_reason="x")])
    _, killed = store.add_messages(sid, [StoredMessage("user", "q2"), StoredMessage(
        "assistant", "", finish_reason="interrupted")])
    store.update_message(finished, answer("streaming words", [], ""), index=False)
    store.update_message(killed, StoredMessage("assistant", "half", "halfway thoughts",
                                               finish_reason="interrupted"), index=False)
    assert store.search("streaming") == [] and store.search("halfway") == []
    store.update_message(finished, answer("finished words", [], ""))
    assert len(store.search("finished")) == 1 and store.search("streaming") == []
    store.close()
    reopened = SessionStore.open(tmp_path / "s.db")
    [hit] = reopened.search("halfway")
    assert (hit.session_id, hit.channel) == (sid, "thinking")
    assert reopened.index_interrupted() == 0  # indexed once, not at every open
    assert len(reopened.search("halfway")) == 1
