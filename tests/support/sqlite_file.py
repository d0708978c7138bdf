"""The session store's file read as another program reads it: a connection of its own, so a
test checks what is on disk, not the store's object."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def pragma(path: Path, statement: str) -> object:
    """The first value a statement gives on its own connection to `path`."""
    db = sqlite3.connect(path)
    try:
        row = db.execute(statement).fetchone()
        db.commit()
        return row[0] if row else None
    finally:
        db.close()
