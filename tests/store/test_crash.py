"""Crash safety with real processes: SIGKILL mid-answer, and two writers at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

from support.sqlite_file import pragma

from reflectchat.demo.scripted_model import Control, Script
from reflectchat.engine.base import TagFormat
from reflectchat.paths import store_file
from reflectchat.reflection.answer import Answer
from reflectchat.store.records import SessionMeta
from reflectchat.store.session_store import SessionStore

# An answer that never ends: thinking with a reflection, then output, over and over.
LOOP = Script("<|go|>", [
    Control("<thinking>"), "Let me work through this carefully. ", Control("<reflection>"),
    "Wait, I should double-check that step. ", Control("</reflection>"),
    "Checked; it holds. ", Control("</thinking>"), Control("<output>"), "The answer is 42. ",
    Control("</output>"),
], loops=True)


def reflectchat(*args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "reflectchat", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kwargs)


def test_sigkill_mid_answer_keeps_every_message_and_the_last_checkpoint(make_model):
    model = make_model(LOOP, context_length=1 << 16)
    ask = ["ask", "--model", str(model), "--format", "reflection"]
    done = reflectchat(*ask, "--max-tokens", "60", "first question")
    assert done.wait(120) == 0, done.stderr.read() if done.stderr else ""

    killed = reflectchat(*ask, "--ctx", str(1 << 16), "--max-tokens", str(1 << 16),
                         "--no-loop-stop",
                         "second question")
    store = SessionStore.open(store_file())
    seen = ""
    deadline = time.monotonic() + 60
    while len(seen) < 2000:  # a few checkpoints in
        assert time.monotonic() < deadline, "no checkpoint appeared"
        assert killed.poll() is None, "the answer ended before it was killed"
        sessions = store.sessions()
        if len(sessions) == 2:  # its messages follow the session row in a moment
            messages = store.messages(sessions[0].id)
            seen = messages[-1].raw if messages else ""
        time.sleep(0.05)
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait(10)
    store.close()

    store = SessionStore.open(store_file())
    assert store.notice is None
    assert pragma(store_file(), "PRAGMA integrity_check") == "ok"
    second, first = store.sessions()
    [q1, a1] = store.messages(first.id)
    assert (q1.raw, a1.finish_reason, a1.stats["completion_tokens"]) == ("first question",
                                                                         "length", 60)
    [q2, a2] = store.messages(second.id)
    assert q2.raw == "second question"
    assert a2.finish_reason == "interrupted"
    assert a2.raw.startswith(seen) and len(a2.raw) >= len(seen)  # nothing before the checkpoint
    cycle = LOOP.text
    assert (cycle * (len(a2.raw) // len(cycle) + 1)).startswith(a2.raw)
    # the parsed channels were saved with the raw text they come from
    parsed = Answer.from_raw(a2.raw, TagFormat.REFLECTION)
    assert a2.thinking == parsed.thinking.strip()
    assert a2.reflections == [r.strip() for r in parsed.reflections] and len(a2.reflections) > 5
    assert a2.output == parsed.output.strip()
    # every hit: the killed answer has one per reflection, newest first, and how many it saved
    # before the kill depends on the machine's load (over 100 cut off the first session's)
    hits = store.search("double check", ["reflection"], limit=1_000_000)
    assert {h.session_id for h in hits} == {first.id, second.id}


WRITER = textwrap.dedent("""
    import sys, time
    from reflectchat.store.records import SessionMeta, StoredMessage
    from reflectchat.store.session_store import SessionStore
    name, shared, start = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    store = SessionStore.open()
    own = store.start_session(name, SessionMeta(), [])[0]
    while time.time() < start:
        time.sleep(0.001)
    for i in range(150):
        for sid in (own, shared):
            store.add_messages(sid, [StoredMessage("user", f"{name} {i}")])
        if i % 10 == 0:
            store.search(name)
""")


def test_two_processes_writing_at_once_lose_nothing():
    store = SessionStore.open(store_file())
    shared = store.start_session("shared", SessionMeta(), [])[0]
    start = str(time.time() + 2)
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, name, str(shared), start],
                                stderr=subprocess.PIPE, text=True) for name in ("alpha", "beta")]
    for w in writers:
        assert w.wait(120) == 0, w.stderr.read() if w.stderr else ""
    by_title = {s.title: s for s in store.sessions()}
    assert by_title["alpha"].messages == by_title["beta"].messages == 150
    texts = [m.raw for m in store.messages(shared)]
    assert len(texts) == 300
    assert sorted(texts) == sorted(f"{n} {i}" for n in ("alpha", "beta") for i in range(150))
    assert [m.seq for m in store.messages(shared)] == list(range(1, 301))
    assert texts.index("alpha 149") > texts.index("alpha 0")  # each writer's order is kept
