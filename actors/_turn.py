"""The turn an object is running, seen from code that runs inside it (stubs, ctx)."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from storage import ObjectStorage


@dataclass(slots=True)
class Turn:
    """One event being handled: its call chain, and the storage its output must commit first."""

    chain: str
    storage: ObjectStorage


current_turn: ContextVar[Turn | None] = ContextVar("raydo_current_turn", default=None)
