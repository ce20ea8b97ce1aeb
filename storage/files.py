"""Opening a storage file from outside its owner (inspection, CLI tools)."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def connect_read_only(path: Path) -> sqlite3.Connection:
    """A connection that cannot write to ``path``. The file's URI is built by pathlib, so a
    folder name with ``?``, ``#`` or ``%`` opens the right file."""
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
