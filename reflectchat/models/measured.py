"""What this machine really did: each load's buffers as llama.cpp logged them (or that it failed
for memory), each answer's speed, and the RAM bandwidth. Kept in `measurements.db` beside the
session store, in its own SQLite file so that planning a model never depends on the chat
history (and a damaged history hides no measurement).

Records are keyed by the machine (CPU, RAM and GPUs: `machine_key`) and the model file's name
(the first shard's). Measuring is a side job: when the file cannot be written, nothing is
recorded and the load or answer goes on.
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
import sqlite3
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from reflectchat.models.hardware import Hardware
from reflectchat.paths import measurements_file

RECENT = 20  # answers a speed figure is the median of
MIN_TOKENS = 16  # fewer answer or prompt tokens say too little about speed

_SCHEMA = """
CREATE TABLE IF NOT EXISTS loads (
    id INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    machine TEXT NOT NULL,
    file TEXT NOT NULL,
    n_ctx INTEGER NOT NULL,
    gpu_layers INTEGER NOT NULL,   -- as llama.cpp counts them; n_layer + 1 is all
    outcome TEXT NOT NULL CHECK (outcome IN ('ok', 'out_of_memory')),
    buffers TEXT NOT NULL DEFAULT '{}'   -- JSON: "DEVICE kind" -> bytes
);
CREATE INDEX IF NOT EXISTS loads_by_file ON loads (machine, file, n_ctx);
CREATE TABLE IF NOT EXISTS speeds (
    id INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    machine TEXT NOT NULL,
    file TEXT NOT NULL,
    n_ctx INTEGER NOT NULL,
    gpu_layers INTEGER NOT NULL,
    placement TEXT NOT NULL,       -- gpu | split | cpu
    params INTEGER NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    prompt_s REAL,
    decode_tokens INTEGER NOT NULL,
    decode_s REAL
);
CREATE INDEX IF NOT EXISTS speeds_by_file ON speeds (machine, file, gpu_layers);
CREATE TABLE IF NOT EXISTS facts (
    machine TEXT NOT NULL,
    key TEXT NOT NULL,
    value REAL NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (machine, key)
);
"""


def machine_key(hw: Hardware) -> str:
    """The same machine gives the same key, whatever is free at the moment."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                cpu = line.partition(":")[2].strip()
                break
    parts = [cpu, str(hw.cpu_threads), str(round(hw.ram_total_bytes / 2**30))]
    parts += [f"{g.name}/{round(g.total_bytes / 2**30)}" for g in hw.gpus]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def file_key(path: Path) -> str:
    return path.name


@dataclass(frozen=True)
class LoadRecord:
    n_ctx: int
    gpu_layers: int
    buffers: dict[str, int]

    @property
    def ram_bytes(self) -> int:
        return sum(v for k, v in self.buffers.items() if k.upper().startswith("CPU"))

    @property
    def gpu_bytes(self) -> int:
        return sum(v for k, v in self.buffers.items() if not k.upper().startswith("CPU"))


@dataclass(frozen=True)
class SpeedRecord:
    decode_tps: float | None
    prompt_tps: float | None
    answers: int


def _number(value: object, low: float = 0.0, high: float = 1e15) -> float | None:
    """A stored number in range, finite, not a bool; None for anything else (a damaged or
    hand-edited cell is ignored, never a crash, a negative size or an infinite speed)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if not math.isfinite(value) or not low <= value <= high:
        return None
    return float(value)


def _whole(value: object, low: int = 0, high: int = 1 << 50) -> int | None:
    number = _number(value, low, high)
    return int(number) if number is not None and number == int(number) else None


class Measurements:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path or measurements_file()

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection | None]:
        """The open database, or None when it cannot be used (then nothing is measured)."""
        conn = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # another process writing: wait a moment, then go on without measurements
            conn = sqlite3.connect(self.path, timeout=1)
            conn.executescript(_SCHEMA)
        except (OSError, sqlite3.Error):
            if conn is not None:
                conn.close()
            yield None
            return
        try:
            with conn:
                yield conn
        except sqlite3.Error:
            pass  # a failed write or read: that measurement is lost, nothing else
        finally:
            conn.close()

    def record_load(self, machine: str, file: str, n_ctx: int, gpu_layers: int,
                    buffers: dict[str, int] | None) -> None:
        """A load: its buffers when it worked, None when it failed for memory."""
        outcome = "out_of_memory" if buffers is None else "ok"
        with self._db() as db:
            if db is not None:
                db.execute("INSERT INTO loads (at, machine, file, n_ctx, gpu_layers, outcome, "
                           "buffers) VALUES (?, ?, ?, ?, ?, ?, ?)",
                           (time.time(), machine, file, n_ctx, gpu_layers, outcome,
                            json.dumps(buffers or {})))

    def record_speed(self, machine: str, file: str, n_ctx: int, gpu_layers: int,
                     placement: str, params: int, prompt: tuple[int, float | None],
                     decode: tuple[int, float | None]) -> None:
        """An answer: (tokens, seconds) of its prompt processing and of its decoding."""
        with self._db() as db:
            if db is not None:
                db.execute("INSERT INTO speeds (at, machine, file, n_ctx, gpu_layers, "
                           "placement, params, prompt_tokens, prompt_s, decode_tokens, "
                           "decode_s) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           (time.time(), machine, file, n_ctx, gpu_layers, placement, params,
                            prompt[0], prompt[1], decode[0], decode[1]))

    def loaded(self, machine: str, file: str, n_ctx: int, gpu_layers: int) -> LoadRecord | None:
        """The latest successful load with exactly these settings."""
        row = None
        with self._db() as db:
            row = db.execute(
                "SELECT buffers FROM loads WHERE machine = ? AND file = ? AND n_ctx = ? AND "
                "gpu_layers = ? AND outcome = 'ok' ORDER BY at DESC LIMIT 1",
                (machine, file, n_ctx, gpu_layers)).fetchone() if db else None
        if row is None:
            return None
        try:
            stored = json.loads(row[0])
        except (ValueError, TypeError, RecursionError):
            return None
        if not isinstance(stored, dict):
            return None
        buffers = {str(k): size for k, v in stored.items()
                   if (size := _whole(v)) is not None}
        if len(buffers) != len(stored):
            return None  # a damaged record: plan as if never loaded
        return LoadRecord(n_ctx, gpu_layers, buffers)

    def memory_cap(self, machine: str, file: str, n_ctx: int) -> int | None:
        """Fewer GPU layers than the fewest that failed for memory at this context or a
        smaller one, unless a load with at least that many worked since."""
        rows = []
        with self._db() as db:
            rows = db.execute(
                "SELECT gpu_layers, outcome, at FROM loads WHERE machine = ? AND file = ? AND "
                "n_ctx <= ? ORDER BY at", (machine, file, n_ctx)).fetchall() if db else []
        cap = None
        for stored, outcome, _at in rows:
            layers = _whole(stored, 0, 100_000)
            if layers is None:
                continue
            if outcome == "out_of_memory":
                cap = layers - 1 if cap is None else min(cap, layers - 1)
            elif cap is not None and layers > cap:
                cap = None  # it fitted after all (memory was freed since)
        return cap

    def speed(self, machine: str, file: str, gpu_layers: int) -> SpeedRecord | None:
        """Median decode and prompt tokens/s of the recent answers with this placement."""
        rows = []
        with self._db() as db:
            rows = db.execute(
                "SELECT prompt_tokens, prompt_s, decode_tokens, decode_s FROM speeds WHERE "
                "machine = ? AND file = ? AND gpu_layers = ? ORDER BY at DESC LIMIT ?",
                (machine, file, gpu_layers, RECENT)).fetchall() if db else []
        decode = [rate for _, _, t, s in rows if (rate := _rate(t, s)) is not None]
        prompt = [rate for t, s, _, _ in rows if (rate := _rate(t, s)) is not None]
        if not decode and not prompt:
            return None
        return SpeedRecord(statistics.median(decode) if decode else None,
                           statistics.median(prompt) if prompt else None, len(rows))

    def prompt_speeds(self, machine: str, placement: str) -> list[tuple[int, float]]:
        """(parameters, prompt tokens/s) of every model measured here with this placement."""
        rows = []
        with self._db() as db:
            rows = db.execute(
                "SELECT params, prompt_tokens, prompt_s FROM speeds WHERE machine = ? AND "
                "placement = ? AND params > 0 AND prompt_s > 0 AND prompt_tokens >= ?",
                (machine, placement, MIN_TOKENS)).fetchall() if db else []
        by_params: dict[int, list[float]] = {}
        for params, tokens, seconds in rows:
            rate, count = _rate(tokens, seconds), _whole(params, 1)
            if rate is not None and count is not None:
                by_params.setdefault(count, []).append(rate)
        return [(p, statistics.median(v)) for p, v in by_params.items()]

    def fact(self, machine: str, key: str) -> float | None:
        row = None
        with self._db() as db:
            row = db.execute("SELECT value FROM facts WHERE machine = ? AND key = ?",
                             (machine, key)).fetchone() if db else None
        return _number(row[0], 0.0, 1e15) if row else None

    def set_fact(self, machine: str, key: str, value: float) -> None:
        with self._db() as db:
            if db is not None:
                db.execute("INSERT OR REPLACE INTO facts (machine, key, value, at) "
                           "VALUES (?, ?, ?, ?)", (machine, key, value, time.time()))


def _rate(tokens: object, seconds: object) -> float | None:
    """Tokens a second from a stored count and time; None when either is damaged or too few
    tokens were measured to mean anything."""
    count, time_s = _number(tokens, MIN_TOKENS, 1e9), _number(seconds, 1e-6, 1e7)
    return count / time_s if count is not None and time_s is not None else None
