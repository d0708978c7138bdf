"""A session's context saved beside it, so a chat resumed later does not evaluate the whole
conversation again: the tokens the model's context holds and their KV cache (llama.cpp's
per-sequence state), in one file per session in the cache folder.

A saved state is only used where everything that shaped it is the same: the model file (its
size, modification time and a hash of its first MiB), the chat template, the context size and
KV cache types, and the llama-cpp-python version that wrote it; and only for the session it
was saved for. The state's own hash is checked before llama.cpp reads it, so a truncated,
damaged or swapped file is refused, never loaded. Restoring puts the saved tokens back with
their cache; the next prompt keeps only the prefix it shares with them (llama-cpp-python
compares token by token and drops the rest of the cache), so what is reused is exactly what the
new prompt begins with. Files are written whole under another name and renamed (a process
killed mid-write leaves nothing that loads), readable by the user alone.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reflectchat.paths import context_state_file as context_file
from reflectchat.versions import installed

if TYPE_CHECKING:
    from reflectchat.engine.base import Backend
    from reflectchat.engine.llama import LlamaEngine

FORMAT = 1
_HEAD_BYTES = 1024**2  # of the model file, hashed into its identity
# One save at a time in a process: an answer's save can still be writing when the next answer
# ends and saves the same session (a slow disk), and both would write one partial file; in
# turn, the later state is also the one left.
_saving = threading.Lock()


class ContextNotSaved(Exception):
    """The context could not be written (no space, a folder that cannot be made): the
    session itself is saved, and opens by evaluating it whole."""


@dataclass(frozen=True)
class ContextKey:
    """What makes a saved state valid for a loaded model."""

    size: int
    mtime_ns: int
    head: str  # sha256 of the model file's first MiB
    template: str  # sha256 of the chat template's name and text
    n_ctx: int
    type_k: str
    type_v: str
    library: str  # llama-cpp-python's version


def key_of(engine: LlamaEngine) -> ContextKey:
    info = engine.path.stat()
    with engine.path.open("rb") as f:
        head = hashlib.sha256(f.read(_HEAD_BYTES)).hexdigest()
    template = hashlib.sha256(f"{engine.template}\n{engine.prompt.source}".encode()).hexdigest()
    s = engine.settings
    return ContextKey(info.st_size, info.st_mtime_ns, head, template, engine.n_ctx, s.type_k,
                      s.type_v, installed("llama_cpp_python"))


def keep(engine: Backend, session_id: int, budget: int) -> int:
    """Save the context of a model run here for `session_id` (a server keeps its own), then
    keep all saved contexts within `budget` bytes, the least recently used going first; the
    bytes written (0: nothing saved). The context is copied under the engine's lock (an
    answer waits only for the copy), the file written without it. Raises ContextNotSaved."""
    from reflectchat.engine.llama import LlamaEngine

    if not isinstance(engine, LlamaEngine):
        return 0
    with _saving:
        try:
            return _keep(engine, session_id, budget)
        except OSError as exc:
            raise ContextNotSaved(f"The model's context was not saved with the session "
                                  f"({exc.strerror or exc}); it is evaluated whole when the "
                                  f"session opens") from exc


def _keep(engine: LlamaEngine, session_id: int, budget: int) -> int:
    with engine.lock:
        tokens, state = engine.model.sequence_state()
        engine.context_session = session_id
    if not tokens or not state:
        return 0
    header = json.dumps({"format": FORMAT, "session": session_id,
                         "key": asdict(key_of(engine)), "tokens": tokens,
                         "sha256": hashlib.sha256(state).hexdigest(), "bytes": len(state)})
    path = context_file(session_id)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    try:
        with os.fdopen(os.open(partial, flags, 0o600), "wb") as f:
            f.write(header.encode() + b"\n")
            f.write(state)
            f.flush()
            os.fsync(f.fileno())
        partial.replace(path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    size = path.stat().st_size
    keep_within(budget)
    return size if path.exists() else 0


def saved() -> list[Path]:
    """The saved contexts, least recently used first."""
    folder = context_file(0).parent
    files = [p for p in folder.glob("session-*.state") if p.is_file()] if folder.is_dir() else []
    return sorted(files, key=lambda p: p.stat().st_mtime_ns)


def keep_within(budget: int) -> None:
    """Delete the least recently used saved contexts until they take at most `budget`."""
    files = saved()
    total = sum(p.stat().st_size for p in files)
    for path in files:
        if total <= budget:
            break
        total -= path.stat().st_size
        path.unlink(missing_ok=True)


def resume(engine: Backend, session_id: int) -> dict[str, Any]:
    """Put the saved context of `session_id` back into a model run here, unless its cache
    holds that session's already: {"tokens", "seconds"} restored, or {"tokens": 0, "why"}."""
    from reflectchat.engine.llama import LlamaEngine

    if not isinstance(engine, LlamaEngine):
        return {"tokens": 0, "why": "a server keeps its own context"}
    with engine.lock:
        if engine.context_session == session_id:
            return {"tokens": 0, "why": "the model holds it already"}
        done = _restore(engine, session_id)
        engine.context_session = session_id
    if isinstance(done, str):
        return {"tokens": 0, "why": done}
    return {"tokens": done[0], "seconds": round(done[1], 3)}


def _restore(engine: LlamaEngine, session_id: int) -> tuple[int, float] | str:
    start = time.perf_counter()
    found = _read(context_file(session_id), session_id, key_of(engine))
    if isinstance(found, str):
        return found
    tokens, state = found
    if not engine.model.restore_sequence(tokens, state):
        return "llama.cpp refused the saved context"
    with contextlib.suppress(OSError):
        os.utime(context_file(session_id))  # used now: the last to go when space is short
    return len(tokens), time.perf_counter() - start


def _read(path: Path, session_id: int, key: ContextKey) -> tuple[list[int], bytes] | str:
    try:  # a regular file of its own, never a link or a FIFO (which would block the read)
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
                     | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return "the saved file is damaged"
            header = _header(f.readline(4 * 1024**2))
            state = f.read(header["bytes"] + 1) if header else b""
    except FileNotFoundError:
        return "none was saved"
    except OSError as exc:
        return f"it could not be read ({exc.strerror or exc})"
    if header is None or len(state) != header["bytes"] or \
            hashlib.sha256(state).hexdigest() != header["sha256"]:
        return "the saved file is damaged"
    if header["session"] != session_id:
        return "the saved file belongs to another session"
    if header["key"] != asdict(key):
        return "it was saved with another model file, template, context size or llama.cpp"
    return header["tokens"], state


def _header(line: bytes) -> dict[str, Any] | None:
    """The file's first line, every field checked; None for anything else."""
    try:
        data = json.loads(line)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return None
    tokens, size = data.get("tokens"), data.get("bytes")
    if not (isinstance(tokens, list) and tokens and all(type(t) is int and t >= 0 for t in tokens)
            and type(size) is int and size > 0 and isinstance(data.get("sha256"), str)
            and type(data.get("session")) is int and isinstance(data.get("key"), dict)):
        return None
    return data


def resumed_text(done: dict[str, Any]) -> str:
    """What `resume` did, for the user."""
    if done["tokens"]:
        return f"context restored: {done['tokens']:,} tokens in {done['seconds']:.1f} s"
    return f"context not restored: {done['why']}; the conversation is evaluated whole"
