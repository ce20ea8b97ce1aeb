"""Opening storage files read-only from tools."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from raydo.storage.files import connect_read_only


def test_a_read_only_connection_opens_the_right_file_and_cannot_write(tmp_path: Path) -> None:
    folder = tmp_path / "odd?name#with%25chars"
    folder.mkdir()
    path = folder / "o.sqlite"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (v)")
        conn.execute("INSERT INTO t VALUES (42)")
    conn.close()
    reader = connect_read_only(path)
    try:
        assert reader.execute("SELECT v FROM t").fetchall() == [(42,)]
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            reader.execute("INSERT INTO t VALUES (1)")
    finally:
        reader.close()
    assert not (tmp_path / "odd").exists()  # nothing created beside it
