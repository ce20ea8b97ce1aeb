"""``GET /orm/users/{id}``: the same user as ``GET /users/{id}``, through SQLAlchemy's ORM.

The ``User`` model maps the table the migration made (``created_at`` stays the text SQLite
stores); the engine runs its statements through ``env.DB`` (``raydo.bindings.orm``), one per
database binding, made on first use.
"""

from __future__ import annotations

from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import String
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from raydo.bindings import orm
from raydo.bindings.d1 import D1Database


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"  # made by migrations/0001_create_users.sql

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    email: Mapped[str] = mapped_column(unique=True)
    created_at: Mapped[str] = mapped_column(String)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "email": self.email,
            "created_at": self.created_at,
        }


_engines: WeakKeyDictionary[D1Database, AsyncEngine] = WeakKeyDictionary()


def engine_of(db: D1Database) -> AsyncEngine:
    """The app's engine on ``db`` (``env.DB``): made once, shared by every request."""
    engine = _engines.get(db)
    if engine is None:
        engine = _engines[db] = orm.async_engine(db)
    return engine


async def get_user(request: Request) -> Response:
    user_id = request.path_params["id"]
    if user_id >= 2**63:
        return JSONResponse({"error": "not_found"}, status_code=404)
    async with AsyncSession(engine_of(request.state.env.DB)) as session:
        user = await session.get(User, user_id)
        if user is None:
            return JSONResponse({"error": "not_found"}, status_code=404)
        return JSONResponse(user.to_dict())
