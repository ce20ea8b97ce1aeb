"""Durable Object classes the actors tests run (``tests.actors.sample_objects:<Class>``).

Class attributes are the tests' window into the objects: they count constructions, hold the
asyncio events a handler waits on, and keep every instance made, so a test can look at an
instance's context after the host dropped it. :func:`reset` clears them between tests.
"""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from raydo.actors import DurableObject, ObjectError
from raydo.storage import codec


class Counter(DurableObject):
    constructed: ClassVar[int] = 0
    instances: ClassVar[list[Counter]] = []
    gate: ClassVar[asyncio.Event | None] = None
    started: ClassVar[asyncio.Event | None] = None
    background: ClassVar[asyncio.Event | None] = None

    def __init__(self, ctx: Any, env: Any) -> None:
        super().__init__(ctx, env)
        type(self).constructed += 1
        type(self).instances.append(self)
        self.hits = 0

    async def increment(self, by: int = 1) -> int:
        n = self.ctx.storage.get("n", 0)
        await asyncio.sleep(0)  # another turn would interleave here if turns were not exclusive
        n += by
        self.ctx.storage.put("n", n)
        return int(n)

    async def get(self) -> int:
        return int(self.ctx.storage.get("n", 0))

    async def echo(self, *args: Any, **kwargs: Any) -> Any:
        return [list(args), kwargs]

    async def append(self, i: int) -> None:
        log = self.ctx.storage.get("log", [])
        log.append(i)
        self.ctx.storage.put("log", log)

    async def log(self) -> list[int]:
        return list(self.ctx.storage.get("log", []))

    async def memory(self) -> int:
        """How many calls this very instance has served (in memory only)."""
        self.hits += 1
        return self.hits

    async def whoami(self) -> list[Any]:
        return [self.ctx.id.hex, self.ctx.id.name]

    async def put(self, key: str, value: Any) -> None:
        self.ctx.storage.put(key, value)

    async def read(self, key: str) -> Any:
        return self.ctx.storage.get(key)

    async def fail_after_write(self, key: str) -> None:
        self.ctx.storage.put(key, "written before the failure")
        raise ValueError(f"boom while writing {key}")

    async def unencodable_result(self, key: str) -> Any:
        self.ctx.storage.put(key, "written before the bad result")
        return {"tags": {1, 2}}

    async def huge_result(self, size: int) -> bytes:
        self.ctx.storage.put("huge", True)
        return b"x" * size

    async def slow(self) -> str:
        """Signal ``started``, then wait for ``gate``."""
        assert Counter.gate is not None and Counter.started is not None
        Counter.started.set()
        await Counter.gate.wait()
        self.ctx.storage.put("slow", self.ctx.storage.get("slow", 0) + 1)
        return "done"

    async def keep_alive(self) -> None:
        """Keep the object busy in the background until ``background`` is set."""
        assert Counter.background is not None
        self.ctx.wait_until(Counter.background.wait())

    def sync_method(self) -> int:
        return 1

    async def _private(self) -> int:
        return 1

    async def alarm(self, info: Any) -> None:
        self.ctx.storage.put("alarmed", True)

    async def web_socket_message(self, ws: Any, message: Any) -> None:
        self.ctx.storage.put("ws", True)


class Fetcher(DurableObject):
    async def fetch(self, request: Request) -> Response:
        if request.url.path == "/stream":

            async def chunks() -> Any:
                yield "hello, "
                await asyncio.sleep(0)
                yield b"streaming "
                yield "world"

            return StreamingResponse(chunks(), media_type="text/plain", headers={"x-s": "1"})
        if request.url.path == "/not-a-response":
            return {"status": "oops"}  # type: ignore[return-value]
        body = await request.body()
        self.ctx.storage.put("last_path", request.url.path)
        return JSONResponse(
            {
                "method": request.method,
                "path": request.url.path,
                "query": request.url.query,
                "params": dict(request.query_params),
                "headers": {k: v for k, v in request.headers.items()},
                "body": body.decode("latin-1"),
                "name": self.ctx.id.name,
            },
            status_code=201,
            headers={"x-object": "fetcher"},
        )


class NoFetch(DurableObject):
    async def ping(self) -> str:
        return "pong"


class Fragile(DurableObject):
    """Its constructor raises while ``fail`` is set."""

    fail: ClassVar[bool] = True
    constructed: ClassVar[int] = 0
    attempts: ClassVar[int] = 0

    def __init__(self, ctx: Any, env: Any) -> None:
        type(self).attempts += 1
        ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS boot (attempt INTEGER)")
        ctx.storage.sql.exec("INSERT INTO boot VALUES (?)", type(self).attempts)
        if type(self).fail:
            raise RuntimeError("cannot start: the config is missing")
        super().__init__(ctx, env)
        type(self).constructed += 1

    async def ping(self) -> list[Any]:
        """How many constructors' writes were committed, and how many constructors finished."""
        rows = self.ctx.storage.sql.exec("SELECT count(*) AS n FROM boot").one()
        return [rows["n"], type(self).constructed]


class Forgetful(DurableObject):
    """Overrides ``__init__`` and forgets ``super().__init__(ctx, env)``."""

    def __init__(self, ctx: Any, env: Any) -> None:
        self.ready = True

    async def ping(self) -> str:
        return "pong"


class Relay(DurableObject):
    """Objects that call each other through ``env.RELAY``."""

    gate: ClassVar[asyncio.Event | None] = None
    waiting: ClassVar[asyncio.Event | None] = None

    def _peer(self, name: str) -> Any:
        return self.env.RELAY.get_by_name(name)

    async def ping(self, peer: str) -> list[Any]:
        """A -> B -> A: A writes, calls B, B calls back into A, A writes again."""
        self.ctx.storage.put("a_before", 1)
        from_b = await self._peer(peer).pong(self.ctx.id.name)
        self.ctx.storage.put("a_after", from_b)
        return [
            self.ctx.storage.get("a_before"),
            self.ctx.storage.get("called_back"),
            self.ctx.storage.get("a_after"),
        ]

    async def pong(self, caller: str) -> str:
        self.ctx.storage.put("ponged", caller)
        seen = await self._peer(caller).call_back(self.ctx.id.name)
        return f"pong after {seen}"

    async def call_back(self, who: str) -> str:
        self.ctx.storage.put("called_back", who)
        return f"callback from {who}"

    async def write_then_call(self, peer: str, key: str) -> list[Any]:
        """Write, then make a call that reads this object's file from outside, then one that
        raises; return what the peer saw and the failure."""
        self.ctx.storage.put(key, "committed before the call")
        path = self.ctx.storage._core.path  # white-box: where its file is, for the peer
        seen = await self._peer(peer).peek(str(path), key)
        try:
            await self._peer(peer).explode()
        except ObjectError as exc:
            return [seen, exc.type_name, exc.message]
        return [seen, None, None]

    async def write_call_write_raise(self, peer: str) -> None:
        self.ctx.storage.put("first", 1)
        await self._peer(peer).noop()
        self.ctx.storage.put("second", 2)
        raise KeyError("after the call")

    async def call_in_transaction(self, peer: str) -> list[Any]:
        try:
            with self.ctx.storage.transaction():
                self.ctx.storage.put("in_tx", 1)
                await self._peer(peer).noop()
        except Exception as exc:  # noqa: BLE001 - the test inspects what was raised
            return [
                type(exc).__module__,
                type(exc).__name__,
                str(exc),
                self.ctx.storage.get("in_tx"),
            ]
        return ["", "", "", self.ctx.storage.get("in_tx")]

    async def peek(self, path: str, key: str) -> Any:
        """Read ``key`` from another object's SQLite file with a separate connection."""
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            row = conn.execute("SELECT value FROM _raydo_kv WHERE key = ?", (key,)).fetchone()
        except sqlite3.Error as exc:
            return f"unreadable: {exc}"
        finally:
            conn.close()
        return None if row is None else codec.decode(row[0])

    async def call_and_wait(self, peer: str) -> str:
        """Write, then wait inside a call to ``peer`` until the test opens ``gate``."""
        self.ctx.storage.put("x", "before the slow call")
        result = await self._peer(peer).wait_gate()
        self.ctx.storage.put("x", "after the slow call")
        return str(result)

    async def wait_gate(self) -> str:
        assert Relay.gate is not None and Relay.waiting is not None
        Relay.waiting.set()
        await Relay.gate.wait()
        return "opened"

    async def explode(self) -> None:
        self.ctx.storage.put("exploded", True)
        raise ZeroDivisionError("B exploded")

    async def noop(self) -> int:
        n = self.ctx.storage.get("noops", 0) + 1
        self.ctx.storage.put("noops", n)
        return int(n)

    async def read(self, key: str) -> Any:
        return self.ctx.storage.get(key)

    async def dump(self) -> dict[str, Any]:
        return self.ctx.storage.list()


def reset() -> None:
    """Forget what earlier tests left in the class attributes."""
    Counter.constructed = 0
    Counter.instances = []
    Counter.gate = None
    Counter.started = None
    Counter.background = None
    Relay.gate = None
    Relay.waiting = None
    Fragile.fail = True
    Fragile.constructed = 0
    Fragile.attempts = 0
