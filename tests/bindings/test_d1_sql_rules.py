"""The database binding's SQL (``env.DB``) under the same rules as an object's: the SQL that
crashed the host holding every database, read raydo's statement cache or renamed a table into
raydo's names is refused (issue 12, items 1 to 3, through the binding)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from raydo.gateway.cli_db import apply_migrations
from raydo.gateway.testing import TestApp

AppCopy = Callable[[str], Path]


@pytest.fixture
def app_dir(app_copy: AppCopy) -> Path:
    folder = app_copy("d1")
    apply_migrations(folder, "DB")
    return folder


async def query(app: TestApp, sql: str, *params: Any) -> httpx.Response:
    return await app.http.post("/query", json={"sql": sql, "params": list(params)})


async def refused(app: TestApp, sql: str) -> str:
    reply = await query(app, sql)
    assert reply.status_code == 400, (sql, reply.text)
    message: str = reply.json()["error"]
    return message


async def test_the_database_refuses_what_reaches_memory_files_or_internals(app: TestApp) -> None:
    assert "fts3_tokenizer is not allowed" in await refused(app, "SELECT fts3_tokenizer('simple')")
    assert "fts3 are not allowed" in await refused(app, "CREATE VIRTUAL TABLE f USING fts3(a)")
    assert "SQLite's internals" in await refused(app, "SELECT sql FROM sqlite_stmt")
    assert "SQLite's internals" in await refused(app, "SELECT name FROM dbstat")
    assert "raydo's own statements" in await refused(
        app, "/*raydo 0123456789abcdef*/ SELECT value FROM _raydo_kv"
    )
    assert "_raydo_" in await refused(app, "ALTER TABLE users RENAME TO/**/_raydo_users")
    assert "_raydo_" in await refused(app, "CREATE VIEW v AS SELECT * FROM _raydo_meta")
    # the database goes on, whole
    reply = await query(app, "SELECT count(*) AS n FROM users")
    assert reply.status_code == 200 and reply.json()["value"]["results"] == [{"n": 0}]
    done = await app.http.post("/exec", content=b"CREATE VIRTUAL TABLE docs USING fts5(body)")
    assert done.status_code == 200, done.text


async def test_exec_refuses_a_rename_into_raydos_names_and_rolls_the_call_back(
    app: TestApp,
) -> None:
    reply = await app.http.post(
        "/exec", content=b"CREATE TABLE t (x); ALTER TABLE t RENAME TO/**/_raydo_sockets"
    )
    assert reply.status_code == 400 and "_raydo_sockets" in reply.json()["error"]
    missing = await query(app, "SELECT * FROM t")
    assert "no such table: t" in missing.json()["error"]
