"""The in-process baseline for the counter benchmark: uvicorn + Starlette + one SQLite file per
name, no Ray, no hosts. The same route and the same durability as the counter example.

Run as ``python bench/baseline_app.py PORT STORAGE_DIR``.
"""

from __future__ import annotations

import hashlib
import sqlite3
import sys
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

root = Path(sys.argv[2] if len(sys.argv) > 2 else ".baseline")
connections: dict[str, sqlite3.Connection] = {}


def connection(name: str) -> sqlite3.Connection:
    conn = connections.get(name)
    if conn is None:
        digest = hashlib.sha256(name.encode()).hexdigest()
        path = root / digest[:2] / f"{digest}.sqlite"
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value INTEGER)")
        connections[name] = conn
    return conn


async def increment(request: Request) -> JSONResponse:
    name = request.path_params["name"]
    conn = connection(name)
    row = conn.execute("SELECT value FROM kv WHERE key = 'n'").fetchone()
    value = (row[0] if row else 0) + 1
    conn.execute("INSERT OR REPLACE INTO kv (key, value) VALUES ('n', ?)", (value,))
    return JSONResponse({"name": name, "value": value})


app = Starlette(routes=[Route("/counter/{name}/increment", increment, methods=["POST"])])

if __name__ == "__main__":
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
    )
