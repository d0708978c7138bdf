"""The session store's file: created private (0600 in a 0700 folder), opened in WAL mode with
`synchronous=FULL` so each commit survives a killed process and a power cut, checked, and
migrated to the current schema. A file that is not a readable reflectchat store is moved
aside, never deleted, so a fresh store can start in its place.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

from reflectchat.store.schema import APPLICATION_ID, MIGRATIONS
from reflectchat.untrusted import visible

BUSY_TIMEOUT_S = 10.0


class StoreError(Exception):
    """The store cannot be used; the message says why and what to do."""


class Unreadable(Exception):
    """The file is not a readable reflectchat store."""


def connect(path: Path) -> sqlite3.Connection:
    if path.is_symlink():  # its mode would change another file's (chmod follows links)
        raise StoreError(
            f"The session store {path} is a link to {os.readlink(path)}; reflectchat keeps its "
            "history in a file of its own and changes nothing through a link. Put the file "
            "itself there (or link the whole folder) and start again.")
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0), 0o600))
    os.chmod(path, 0o600)  # the WAL and shared-memory files take the database file's mode
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                           check_same_thread=False)
    conn.create_function("visible", 1, visible, deterministic=True)
    try:
        (app_id,) = conn.execute("PRAGMA application_id").fetchone()
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        (tables,) = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        if app_id != APPLICATION_ID and (app_id != 0 or tables):
            raise Unreadable("it is not a reflectchat session store")
        if version > len(MIGRATIONS):
            conn.close()
            raise StoreError(
                f"The session store {path} was written by a newer reflectchat (schema "
                f"{version}; this one knows {len(MIGRATIONS)}). Upgrade reflectchat to use it.")
        (check,) = conn.execute("PRAGMA quick_check").fetchone()
        if check != "ok":
            raise Unreadable(f"it is damaged: {check}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        _migrate(conn)
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise Unreadable(str(exc)) from None
    except Unreadable:
        conn.close()
        raise
    return conn


def _migrate(conn: sqlite3.Connection) -> None:
    """Apply the migrations this file lacks, each in its own transaction. Re-reading the
    version inside the transaction makes two processes opening a new store at once safe."""
    while True:
        conn.execute("BEGIN IMMEDIATE")
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        if version >= len(MIGRATIONS):
            conn.execute("COMMIT")
            return
        try:
            for statement in _statements(MIGRATIONS[version]):
                conn.execute(statement)
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version = {version + 1}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


def _statements(script: str) -> Iterator[str]:
    """Split a migration into statements (executescript would commit our transaction)."""
    statement = ""
    for line in script.splitlines(keepends=True):
        if line.lstrip().startswith("--") and not statement.strip():
            continue
        statement += line
        if sqlite3.complete_statement(statement):
            yield statement
            statement = ""


def move_aside(path: Path) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.name}.unreadable-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.unreadable-{stamp}-{n}")
    os.replace(path, target)
    for suffix in ("-wal", "-shm"):
        extra = path.with_name(path.name + suffix)
        if extra.exists():
            os.replace(extra, target.with_name(target.name + suffix))
    return target
