"""SQLAlchemy and SQLModel over the database binding (env.DB), for tests: each route is one
session, as an app would write it."""

import base64
import datetime
from typing import Any
from weakref import WeakKeyDictionary

import sqlalchemy.exc
from orm_models import Author, Base, Book, Hero, Team
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import selectinload
from sqlmodel import SQLModel
from sqlmodel import select as model_select
from sqlmodel.ext.asyncio.session import AsyncSession as SQLModelSession
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from raydo.bindings import orm
from raydo.bindings.d1 import D1Database

_engines: "WeakKeyDictionary[D1Database, AsyncEngine]" = WeakKeyDictionary()


async def engine_of(request: Request) -> AsyncEngine:
    """One engine per database binding, its tables made on first use."""
    db = request.state.env.DB
    engine = _engines.get(db)
    if engine is None:
        engine = orm.async_engine(db)
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
            await conn.run_sync(SQLModel.metadata.create_all)
        _engines[db] = engine
    return engine


def _author(author: Author) -> dict[str, Any]:
    return {
        "id": author.id,
        "name": author.name,
        "born": author.born.isoformat() if author.born else None,
        "books": [
            {
                "title": b.title,
                "copies": b.copies,
                "cover": base64.b64encode(b.cover).decode() if b.cover is not None else None,
            }
            for b in author.books
        ],
    }


def _conflict(exc: sqlalchemy.exc.DBAPIError) -> JSONResponse:
    raydo_error = getattr(exc.orig, "orig", None)
    body = {
        "error": type(exc).__name__,
        "driver": type(exc.orig).__name__,
        "raydo": type(raydo_error).__name__,
        "code": getattr(raydo_error, "code", None),
    }
    return JSONResponse(body, status_code=409)


async def add_author(request: Request) -> JSONResponse:
    body = await request.json()
    born = datetime.datetime.fromisoformat(body["born"]) if body.get("born") else None
    author = Author(name=body["name"], born=born)
    for book in body.get("books", []):
        cover = base64.b64decode(book["cover"]) if book.get("cover") else None
        author.books.append(Book(title=book["title"], copies=book.get("copies", 0), cover=cover))
    async with AsyncSession(await engine_of(request), expire_on_commit=False) as session:
        session.add(author)
        try:
            await session.commit()
        except sqlalchemy.exc.IntegrityError as exc:
            return _conflict(exc)
    return JSONResponse({"id": author.id}, status_code=201)


async def get_author(request: Request) -> JSONResponse:
    async with AsyncSession(await engine_of(request)) as session:
        author = await session.scalar(
            select(Author)
            .where(Author.id == request.path_params["id"])
            .options(selectinload(Author.books))
        )
        if author is None:
            return JSONResponse({"error": "not_found"}, status_code=404)
        return JSONResponse(_author(author))


async def list_authors(request: Request) -> JSONResponse:
    async with AsyncSession(await engine_of(request)) as session:
        authors = await session.scalars(
            select(Author).options(selectinload(Author.books)).order_by(Author.name)
        )
        return JSONResponse([_author(a) for a in authors])


async def add_book(request: Request) -> JSONResponse:
    body = await request.json()
    async with AsyncSession(await engine_of(request)) as session:
        author = await session.get(Author, request.path_params["id"])
        if author is None:
            return JSONResponse({"error": "not_found"}, status_code=404)
        session.add(Book(title=body["title"], copies=body.get("copies", 0), author=author))
        await session.commit()
    return JSONResponse({}, status_code=201)


async def delete_author(request: Request) -> JSONResponse:
    async with AsyncSession(await engine_of(request)) as session:
        author = await session.get(
            Author, request.path_params["id"], options=[selectinload(Author.books)]
        )
        if author is None:
            return JSONResponse({"error": "not_found"}, status_code=404)
        await session.delete(author)  # and its books (delete-orphan)
        await session.commit()
    return JSONResponse({})


async def add_hero(request: Request) -> JSONResponse:
    body = await request.json()
    async with SQLModelSession(await engine_of(request), expire_on_commit=False) as session:
        team = (await session.exec(model_select(Team).where(Team.name == body["team"]))).first()
        if team is None:
            team = Team(name=body["team"])
        hero = Hero(name=body["name"], age=body.get("age"), team=team)
        session.add(hero)
        await session.commit()
    return JSONResponse({"id": hero.id, "team_id": hero.team_id}, status_code=201)


async def team_heroes(request: Request) -> JSONResponse:
    async with SQLModelSession(await engine_of(request)) as session:
        statement = (
            model_select(Team)
            .where(Team.name == request.path_params["name"])
            .options(selectinload(Team.heroes))
        )
        team = (await session.exec(statement)).first()
        if team is None:
            return JSONResponse({"error": "not_found"}, status_code=404)
        heroes = sorted(team.heroes, key=lambda h: h.name)
        return JSONResponse([h.model_dump(exclude={"team_id"}) for h in heroes])


app = Starlette(
    routes=[
        Route("/authors", add_author, methods=["POST"]),
        Route("/authors", list_authors, methods=["GET"]),
        Route("/authors/{id:int}", get_author, methods=["GET"]),
        Route("/authors/{id:int}", delete_author, methods=["DELETE"]),
        Route("/authors/{id:int}/books", add_book, methods=["POST"]),
        Route("/heroes", add_hero, methods=["POST"]),
        Route("/teams/{name}/heroes", team_heroes, methods=["GET"]),
    ]
)
