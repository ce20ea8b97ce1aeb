"""What the SQL fuzzing pass checks after every run of hostile statements, and how long it
runs: ``RAYDO_SQL_FUZZ_EXAMPLES`` (default 300 for ``sql.exec``; the database binding runs a
third of it) asks for a longer local run, e.g. ``RAYDO_SQL_FUZZ_EXAMPLES=5000``."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings

Run = Callable[[str], list[tuple[Any, ...]]]
"""Runs one trusted query on the object's file and gives its rows."""

EXAMPLES = int(os.environ.get("RAYDO_SQL_FUZZ_EXAMPLES", "300"))


def fuzz_settings(examples: int) -> settings:
    return settings(
        max_examples=max(examples, 1),
        deadline=None,  # a shared, slow machine: time is not what is tested here
        database=None,  # no example folder left in the checkout
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


RAYDO_SCHEMA = (
    "SELECT type, name, tbl_name, sql FROM sqlite_master"
    r" WHERE name LIKE '\_raydo\_%' ESCAPE '\' OR tbl_name LIKE '\_raydo\_%' ESCAPE '\'"
    r" OR sql LIKE '%\_raydo\_%' ESCAPE '\' ORDER BY name"
)


def raydo_state(run: Run) -> dict[str, list[tuple[Any, ...]]]:
    """raydo's objects in the file and what its tables hold."""
    schema = run(RAYDO_SCHEMA)
    state = {"schema": schema}
    for _, name, _, _ in schema:
        if name in ("_raydo_kv", "_raydo_meta", "_raydo_sockets"):
            state[name] = run(f"SELECT * FROM {name} ORDER BY 1")
    return state


def files_outside(root: Path, storage: Path) -> list[Path]:
    """Every file under ``root`` that is not under ``storage``."""
    return sorted(
        p for p in root.rglob("*") if p.is_file() and storage not in p.parents and p != storage
    )
