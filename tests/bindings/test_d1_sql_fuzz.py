"""The fuzzing pass over the SQL rules through the database binding (``env.DB``): statements
from the grammar of :mod:`tests.storage.sql_grammar`, sent one by one (``prepare().all()``)
and together (``exec``) to a running app; afterwards no ``_raydo_*`` object or row of the
database's file changed, no file appeared outside the storage folder, every answer was a
result or a clear error (never a 500), and the database still answers."""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from anyio.from_thread import start_blocking_portal
from hypothesis import given

from raydo.gateway.cli_db import apply_migrations, database_file
from raydo.gateway.config import load_config
from raydo.gateway.testing import CONFIGURED_STORAGE, TestApp, start_app
from tests.storage.sql_fuzz import EXAMPLES, files_outside, fuzz_settings, raydo_state
from tests.storage.sql_grammar import statements

AppCopy = Callable[[str], Path]
OUTSIDE = Path(tempfile.gettempdir()) / "raydo-d1-fuzz-outside"


async def send(app: TestApp, queries: list[str]) -> list[int]:
    codes = []
    for sql in queries:
        reply = await app.http.post("/query", json={"sql": sql, "params": []})
        codes.append(reply.status_code)
    joined = await app.http.post("/exec", content="; ".join(queries).encode())
    codes.append(joined.status_code)
    return codes


async def count_users(app: TestApp) -> httpx.Response:
    return await app.http.post("/query", json={"sql": "SELECT count(*) AS n FROM users"})


def test_no_statement_through_the_binding_changes_raydos_objects(app_copy: AppCopy) -> None:
    folder = app_copy("d1")
    apply_migrations(folder, "DB")
    config = load_config(folder)
    storage = Path(config.storage).resolve()
    with (
        start_blocking_portal("asyncio") as portal,
        portal.wrap_async_context_manager(start_app(folder, storage=CONFIGURED_STORAGE)) as app,
    ):
        assert portal.call(count_users, app).status_code == 200
        path = database_file(config, "DB")

        def run(sql: str) -> list[tuple[Any, ...]]:
            conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
            try:
                return [tuple(row) for row in conn.execute(sql)]
            finally:
                conn.close()

        before = raydo_state(run)
        outside_before = files_outside(folder, storage)

        @fuzz_settings(max(EXAMPLES // 3, 1))
        @given(queries=statements(OUTSIDE, most=4))
        def attack(queries: list[str]) -> None:
            codes = portal.call(send, app, queries)
            assert all(code in (200, 400, 413, 422) for code in codes), (queries, codes)
            assert raydo_state(run) == before, queries
            assert files_outside(folder, storage) == outside_before, queries
            assert not OUTSIDE.exists() or not any(OUTSIDE.iterdir()), queries

        attack()
        assert portal.call(count_users, app).status_code == 200
