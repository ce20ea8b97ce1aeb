"""The fuzzing pass over the SQL rules through ``ctx.storage.sql.exec``: runs of statements
from a grammar of SQLite's (:mod:`tests.storage.sql_grammar`), after which no ``_raydo_*``
object or row changed, no file appeared outside the storage folder, and every refusal was a
storage error (never a crash, never a raw ``sqlite3`` error)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from raydo.storage import LimitExceeded, SqlError, StorageError
from raydo.storage._authorizer import ALLOWED_FUNCTIONS
from tests.storage.conftest import StandaloneStorage
from tests.storage.sql_fuzz import EXAMPLES, files_outside, fuzz_settings, raydo_state
from tests.storage.sql_grammar import FUNCTIONS, literal, statements

OUTSIDE = Path(tempfile.gettempdir()) / "raydo-sql-fuzz-outside"


def _run(storage: StandaloneStorage, queries: list[str]) -> None:
    for query in queries:
        try:
            storage.sql.exec(query)
        except (StorageError, LimitExceeded):
            storage.rollback()  # what the host does with an event that raised


@fuzz_settings(EXAMPLES)
@given(queries=statements(OUTSIDE), commit=st.booleans())
def test_no_statement_changes_raydos_objects_or_writes_elsewhere(
    queries: list[str], commit: bool
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        store = root / "storage"
        storage = StandaloneStorage(store / "obj" / "object.sqlite")
        try:
            storage.put("secret", "value")
            storage.set_alarm(10**13)
            storage.sql.exec("CREATE TABLE t (x, y)")
            storage.commit()

            def run(sql: str) -> list[tuple[Any, ...]]:
                return [tuple(r) for r in storage.core.internal(storage.core.tag + sql)]

            before = raydo_state(run)
            _run(storage, queries)
            if commit:
                try:
                    storage.commit()
                except StorageError:
                    storage.rollback()
            else:
                storage.rollback()
            assert raydo_state(run) == before, queries
            assert storage.get("secret") == "value"
            assert files_outside(root, store) == []
            assert not OUTSIDE.exists() or not any(OUTSIDE.iterdir()), queries
        finally:
            storage.close()


@st.composite
def function_calls(draw: st.DrawFn) -> tuple[str, str]:
    name, narg = draw(st.sampled_from(FUNCTIONS))
    count = draw(st.integers(0, 3)) if narg < 0 else narg
    args = ", ".join(draw(literal) for _ in range(count))
    return name, f"SELECT {name}({args})"


@fuzz_settings(EXAMPLES)
@given(call=function_calls())
def test_every_function_of_the_build_outside_the_allow_list_is_refused(
    storage: StandaloneStorage, call: tuple[str, str]
) -> None:
    name, query = call
    try:
        storage.sql.exec(query)
    except SqlError as exc:
        if name.lower() not in ALLOWED_FUNCTIONS:
            assert f"the function {name} is not allowed" in str(exc)
        return
    except LimitExceeded:
        return
    finally:
        storage.rollback()
    assert name.lower() in ALLOWED_FUNCTIONS, f"{query} ran"
