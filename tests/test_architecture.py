"""ARCHITECTURE.md stays true: every module it names exists, and every name it gives a module
is defined there."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TEXT = (REPO / "ARCHITECTURE.md").read_text()

MODULE = re.compile(r"`((?:actors|bindings|gateway|storage|raydo|workers)/[\w/]*\.py)`")
# "`actors/_slot.py` (`ObjectSlot`" and "(`actors/_intake.py`, `Intake`)": a module, then names.
NAMED = re.compile(r"`([\w/]+\.py)`,? \(?`([A-Za-z_]\w*)`(?:, `([A-Za-z_]\w*)`)?")


def _defined(path: Path) -> set[str]:
    """The names a module defines at its top level or in its classes."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


def test_the_page_names_modules() -> None:
    assert len(set(MODULE.findall(TEXT))) > 40


@pytest.mark.parametrize("module", sorted(set(MODULE.findall(TEXT))))
def test_every_module_named_exists(module: str) -> None:
    assert (REPO / module).is_file(), f"ARCHITECTURE.md names {module}, which is not there"


@pytest.mark.parametrize(
    ("module", "name"),
    sorted({(m, n) for m, *names in NAMED.findall(TEXT) for n in names if n}),
)
def test_every_name_given_a_module_is_defined_there(module: str, name: str) -> None:
    assert name in _defined(REPO / module), f"ARCHITECTURE.md: {module} has no {name}"
