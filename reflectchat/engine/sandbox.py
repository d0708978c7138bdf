"""A model's own chat template, and tensor-override patterns over its tensor names, run in a
process of their own under a time and a size bound (`sandbox_worker.py` says why). One worker
process serves them all; it starts at the first request and again after it was stopped."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

from reflectchat.engine.errors import EngineError

TIME_LIMIT_S = 10.0  # one render; real templates take milliseconds


class SandboxError(Exception):
    """The work failed: a template on these messages (its own `raise_exception`, a Jinja
    error), or a function on its input."""


class BoundError(EngineError):
    """A request ran past a bound; the message says which, as the end of a sentence."""


class _Worker:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[str] | None = None
        self._replies: queue.Queue[str | None] = queue.Queue()

    def ask(self, request: dict[str, object], seconds: float) -> dict[str, Any]:
        line = json.dumps(request) + "\n"
        with self._lock:
            process = self._running()
            try:
                assert process.stdin is not None
                process.stdin.write(line)
                process.stdin.flush()
                reply = self._replies.get(timeout=seconds)
            except queue.Empty:
                self._stop()
                raise BoundError(f"it ran longer than {seconds:g} s") from None
            except OSError:
                reply = None
            if reply is None:  # the process ended: killed by the system, or out of memory
                self._stop()
                raise BoundError("its process ended while rendering")
        answer: dict[str, Any] = json.loads(reply)
        if "bound" in answer:
            raise BoundError(answer["bound"])
        if "error" in answer:
            raise SandboxError(answer["error"])
        return answer

    def _running(self) -> subprocess.Popen[str]:
        if self._process is None:
            self._replies = queue.Queue()
            self._process = subprocess.Popen(
                [sys.executable, "-m", "reflectchat.engine.sandbox_worker"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                text=True, encoding="utf-8", env={**os.environ, "PYTHONIOENCODING": "utf-8"})
            threading.Thread(target=_read_replies, args=(self._process, self._replies),
                             daemon=True, name="template-replies").start()
        return self._process

    def _stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None


def _read_replies(process: subprocess.Popen[str], replies: queue.Queue[str | None]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        replies.put(line)
    replies.put(None)


_worker = _Worker()


def bounded_template(source: str, bos: str, eos: str,
                     generation_prompt: bool = True) -> Callable[..., str]:
    """A GGUF's own Jinja chat template: call it with the messages and any variables the
    template reads (`enable_thinking`). Raises SandboxError for the template's own errors and
    BoundError past a bound (`TIME_LIMIT_S` as it is at each render)."""

    def render(messages: list[dict[str, str]], **variables: object) -> str:
        return str(_worker.ask({"source": source, "bos": bos, "eos": eos,
                                "generation_prompt": generation_prompt, "messages": messages,
                                "variables": variables}, TIME_LIMIT_S)["text"])

    return render


def run_bounded(function: str, *args: Any, seconds: float) -> Any:
    """`function` of reflectchat ("reflectchat.module:name"), called with JSON-able `args` in
    the bounded process; its JSON-able result. BoundError past `seconds` or the process's
    memory; SandboxError for any exception it raised."""
    return _worker.ask({"call": function, "args": list(args)}, seconds)["result"]
