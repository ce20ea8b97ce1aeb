"""SQLAlchemy inside an object, on its own SQLite (ctx.storage), sync and async."""

import datetime
from typing import Any

import sqlalchemy.exc
from sqlalchemy import DateTime, String, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from raydo import DurableObject
from raydo.bindings import orm


class Base(DeclarativeBase):
    pass


class Note(Base):
    __tablename__ = "notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str] = mapped_column(String(200), unique=True)
    at: Mapped[datetime.datetime | None] = mapped_column(DateTime)


class Notes(DurableObject):
    def __init__(self, ctx: Any, env: Any) -> None:
        super().__init__(ctx, env)
        self.db = orm.engine(ctx.storage)
        self.async_db = orm.async_engine(ctx.storage)
        Base.metadata.create_all(self.db)  # in the first event: once per object, kept

    async def add(self, note: str, at: datetime.datetime | None = None) -> int:
        with Session(self.db) as session:
            row = Note(text=note, at=at)
            session.add(row)
            session.commit()
            return row.id

    async def add_async(self, note: str) -> int:
        async with AsyncSession(self.async_db, expire_on_commit=False) as session:
            row = Note(text=note)
            session.add(row)
            await session.commit()
            return row.id

    async def texts(self) -> list[str]:
        with Session(self.db) as session:
            return list(session.scalars(select(Note.text).order_by(Note.id)))

    async def texts_async(self) -> list[str]:
        async with AsyncSession(self.async_db) as session:
            return list(await session.scalars(select(Note.text).order_by(Note.id)))

    async def notes(self) -> list[dict[str, Any]]:
        with self.db.connect() as conn:
            rows = conn.execute(select(Note.__table__).order_by(Note.id)).mappings()
            return [dict(r) for r in rows]

    async def add_then_fail(self, note: str) -> None:
        with Session(self.db) as session:
            session.add(Note(text=note))
            session.commit()
        raise RuntimeError("after the commit: the event fails, and its writes with it")

    async def add_many(self, notes: list[str]) -> int:
        with self.db.connect() as conn:
            done = conn.execute(insert(Note), [{"text": n} for n in notes])
            conn.commit()
            return done.rowcount

    async def add_duplicate(self, note: str) -> dict[str, Any]:
        """Insert ``note`` twice; the second is caught and the event goes on."""
        with Session(self.db) as session:
            session.add(Note(text=note))
            session.commit()
            session.add(Note(text=note))
            try:
                session.commit()
            except sqlalchemy.exc.IntegrityError as exc:
                session.rollback()
                count = session.scalar(select(func.count()).select_from(Note))
                return {
                    "error": type(exc).__name__,
                    "orig": type(exc.orig).__module__ + "." + type(exc.orig).__name__,
                    "raydo": type(exc.orig.orig).__name__,  # type: ignore[union-attr]
                    "message": str(exc.orig),
                    "count": count,
                }
        return {}

    async def bad_input(self) -> list[str]:
        """What each bad value or statement raises, as ``Class: message``; nothing is written."""
        tries: list[Any] = [
            (text("SELECT :x"), {"x": object()}),
            (text("SELECT :x"), {"x": [1]}),
            (insert(Note), {"text": "big", "id": 2**63}),
            (insert(Note), {"text": "x" * (3 * 2**20)}),
            (insert(Note), {"text": "\ud800"}),
        ]
        found = []
        with self.db.connect() as conn:
            for statement, params in tries:
                try:
                    conn.execute(statement, params)
                except sqlalchemy.exc.DBAPIError as exc:
                    found.append(f"{type(exc).__name__}: {exc.orig}")
            with Session(self.db) as session:
                try:
                    with session.begin_nested():  # SAVEPOINT: the storage's rules refuse it
                        session.execute(select(Note.id))
                except sqlalchemy.exc.DBAPIError as exc:
                    found.append(f"{type(exc).__name__}: {exc.orig}")
        return found

    async def refused(self, sql: str) -> str:
        with self.db.connect() as conn:
            try:
                conn.execute(text(sql))
            except sqlalchemy.exc.DBAPIError as exc:
                return f"{type(exc).__name__}: {exc.orig}"
        return "ran"
