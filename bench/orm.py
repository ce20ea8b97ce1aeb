"""What SQLAlchemy costs on the database binding: point reads and inserts through
``raydo.bindings.orm`` (Core and the ORM) beside the same SQL through ``env.DB`` directly, in
the same run.

Operations, each one call at a time, from the benchmark's event loop (no HTTP):

* reads: ``env.DB.prepare(...).bind(id).first()``; Core ``conn.execute(select(...))`` on one
  ``AsyncConnection``; ORM ``session.get(User, id)`` in a new ``AsyncSession`` each (what a
  request handler does);
* inserts: ``prepare(INSERT).bind(...).run()``; ORM ``session.add(User(...))`` and
  ``commit()`` in a new session each (its INSERT ... RETURNING is one call);

with the database object in this process (``start_app``) and in a Ray host
(``start_app(ray=True)``). Writes ``bench/results/orm.json``.

    .venv/bin/python bench/orm.py [--seconds 3] [--rounds 2] [--no-ray]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

from d1 import INSERT, READ, ROWS, SCHEMA, make_app, measure
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from raydo.bindings import orm
from raydo.gateway.testing import start_app

RESULTS = Path(__file__).resolve().parent / "results" / "orm.json"


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    email: Mapped[str | None]


async def rates(app_dir: Path, storage: Path, ray: bool, seconds: float) -> dict[str, float]:
    found: dict[str, float] = {}
    # A folder of its own each time: a Ray runtime's claim on its folder outlives the block.
    # The table is made here (IF NOT EXISTS): migrations would go to the configured folder.
    async with start_app(app_dir, ray=ray, storage=storage) as app:
        db = app.env.DB
        read, insert = db.prepare(READ), db.prepare(INSERT)
        await db.exec(SCHEMA.replace("CREATE TABLE", "CREATE TABLE IF NOT EXISTS"))
        count = await db.prepare("SELECT count(*) AS n FROM users").first("n")
        if count < ROWS:  # (a second Ray run in one process finds the first one's hosts)
            await db.batch([insert.bind(f"user{i}", f"u{i}@x") for i in range(ROWS - count)])
        engine = orm.async_engine(db)

        async def raw_read(i: int) -> None:
            assert await read.bind(random.randint(1, ROWS)).first() is not None

        async with engine.connect() as conn:

            async def core_read(i: int) -> None:
                statement = select(User.id, User.name, User.email).where(
                    User.id == random.randint(1, ROWS)
                )
                assert (await conn.execute(statement)).first() is not None

            async def orm_read(i: int) -> None:
                async with AsyncSession(engine) as session:
                    assert await session.get(User, random.randint(1, ROWS)) is not None

            async def raw_insert(i: int) -> None:
                await insert.bind(f"new{i}", "n@x").run()

            async def orm_insert(i: int) -> None:
                async with AsyncSession(engine) as session:
                    session.add(User(name=f"orm{i}", email="o@x"))
                    await session.commit()

            for label, op in (
                ("reads, env.DB", raw_read),
                ("reads, Core", core_read),
                ("reads, ORM session.get", orm_read),
                ("inserts, env.DB", raw_insert),
                ("inserts, ORM add+commit", orm_insert),
            ):
                await measure(op, 0.5, 1)  # warm-up (SQLAlchemy's statement cache too)
                found[label] = await measure(op, seconds, 1)
        await engine.dispose()
    return found


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray-hosted target")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="raydo-bench-orm-"))
    try:
        app_dir = make_app(folder)
        targets = [("in-process host", False)] + ([] if args.no_ray else [("Ray host", True)])
        rows: list[dict[str, Any]] = []
        for round_number in range(1, args.rounds + 1):
            for target, ray in targets:
                storage = folder / f"storage-{round_number}-{int(ray)}"
                for op, rate in (await rates(app_dir, storage, ray, args.seconds)).items():
                    rows.append({"round": round_number, "target": target, "op": op, "per_s": rate})
        print(f"{'round':>5}  {'target':<16} {'operation':<26} {'per s':>8}")
        for row in rows:
            print(f"{row['round']:>5}  {row['target']:<16} {row['op']:<26} {row['per_s']:>8,.0f}")
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        machine = {"node": platform.node(), "cores": os.cpu_count()}
        RESULTS.write_text(
            json.dumps({"machine": machine, "seconds": args.seconds, "rows": rows}, indent=2) + "\n"
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
