"""The objects of the gates tests: a room whose methods read and write around awaits, an
upstream that answers when told to (or after a delay), and a loader that initializes in a
critical section its constructor starts."""

import asyncio
import contextlib
import sqlite3
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from raydo import DurableObject
from raydo.storage import codec


class Room(DurableObject):
    def __init__(self, ctx: Any, env: Any) -> None:
        super().__init__(ctx, env)
        ctx.storage.put("constructed", ctx.storage.get("constructed", 0) + 1)
        self.polls: list[asyncio.Future[Any]] = []

    async def constructions(self) -> int:
        return int(self.ctx.storage.get("constructed"))

    async def get(self, key: str = "n") -> Any:
        return self.ctx.storage.get(key)

    # ---- scenario 7 and 18 ------------------------------------------------------------

    async def increment(self) -> int:
        """The count before this call (storage calls never suspend: nothing interleaves)."""
        n = int(self.ctx.storage.get("n", 0))
        self.ctx.storage.put("n", n + 1)
        return n

    async def append(self, i: int) -> None:
        log = self.ctx.storage.get("log", [])
        self.ctx.storage.put("log", [*log, i])

    # ---- scenario 8: read and write around an await -----------------------------------

    async def _load(self, key: str) -> int:
        return int(self.ctx.storage.get(key, 0))

    async def _save(self, key: str, value: int) -> None:
        self.ctx.storage.put(key, value)

    async def add_awaiting_storage(self, key: str) -> None:
        """``n = await get(k); await put(k, n + 1)``: awaits of storage do not suspend."""
        n = await self._load(key)
        await self._save(key, n + 1)

    async def add_in_transaction(self, key: str, pause: float) -> None:
        """Read, a real await, write: inside storage.transaction(), a critical section."""
        with self.ctx.storage.transaction():
            n = int(self.ctx.storage.get(key, 0))
            await asyncio.sleep(pause)
            self.ctx.storage.put(key, n + 1)

    async def add_in_section(self, key: str, pause: float) -> None:
        """Read, a real await, write: inside block_concurrency_while()."""

        async def add() -> None:
            n = int(self.ctx.storage.get(key, 0))
            await asyncio.sleep(pause)
            self.ctx.storage.put(key, n + 1)

        await self.ctx.block_concurrency_while(add)

    async def fail_in_section(self) -> str:
        """A critical section that raises: caught here, the object is reset all the same."""

        async def fail() -> None:
            self.ctx.storage.put("n", 99)
            raise ValueError("on purpose")

        try:
            await self.ctx.block_concurrency_while(fail)
        except ValueError:
            return "caught"
        return "not raised"

    # ---- scenario 9: another event runs while one awaits a call out -------------------

    def _note(self, what: str) -> None:
        self.ctx.storage.put("trace", [*self.ctx.storage.get("trace", []), what])

    async def read_then_call(self, token: str) -> int:
        n = int(self.ctx.storage.get("n", 0))
        self._note("A read")
        await self.env.UPSTREAM.get_by_name("u").hold(token)
        self._note("A write")
        self.ctx.storage.put("n", n + 1)
        return n

    async def bump(self) -> int:
        self._note("B")
        n = int(self.ctx.storage.get("n", 0)) + 1
        self.ctx.storage.put("n", n)
        return n

    async def trace(self) -> list[str]:
        return list(self.ctx.storage.get("trace", []))

    # ---- the long poll --------------------------------------------------------------------

    async def poll(self) -> Any:
        waiter: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.polls.append(waiter)
        return await waiter

    async def waiting(self) -> int:
        return len(self.polls)

    async def post(self, message: Any) -> int:
        polls, self.polls = self.polls, []
        for waiter in polls:
            if not waiter.done():
                waiter.set_result(message)
        return len(polls)

    # ---- scenarios 14 to 17 ---------------------------------------------------------------

    async def write_and_return(self, value: Any) -> str:
        self.ctx.storage.put("unawaited", value)
        return "returned"

    async def write_await_return(self, value: Any) -> str:
        self.ctx.storage.put("between", value)
        await asyncio.sleep(0.01)
        return "returned"

    async def fail_at_commit(self) -> str:
        sql = self.ctx.storage.sql
        sql.exec("CREATE TABLE IF NOT EXISTS parent (id INTEGER PRIMARY KEY)")
        sql.exec(
            "CREATE TABLE IF NOT EXISTS child (parent INTEGER"
            " REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED)"
        )
        sql.exec("INSERT INTO child VALUES (42)")  # no parent 42: the COMMIT fails
        await asyncio.sleep(0)  # the step ends: its writes commit here
        return "the commit did not fail"

    async def writes_then_abort(self) -> None:
        self.ctx.storage.put("a", 1)
        self.ctx.storage.put("b", 2)
        self.ctx.storage.put("c", 3)
        self.ctx.abort("on purpose")

    async def put_many_with_a_bad_value(self) -> None:
        self.ctx.storage.put_many({"x": 1, "y": {1, 2}, "z": 3})

    async def put_then_get(self, value: Any) -> Any:
        self.ctx.storage.put("fresh", value)
        return self.ctx.storage.get("fresh")

    async def keys(self) -> list[str]:
        return list(self.ctx.storage.list())

    async def write_then_call(self, path: str, value: Any) -> Any:
        """The output gate on a call out: the write before it is committed when it leaves."""
        self.ctx.storage.put("before_call", value)
        return await self.env.UPSTREAM.get_by_name("peek").peek(path, "before_call")

    # ---- scenario 15: allow_unconfirmed and sync() ----------------------------------------

    async def put_unconfirmed(self, key: str, value: Any) -> str:
        self.ctx.storage.put(key, value, allow_unconfirmed=True)
        return "returned"

    async def put_confirmed(self, key: str, value: Any) -> str:
        self.ctx.storage.put(key, value)
        return "returned"

    async def sync(self) -> str:
        await self.ctx.storage.sync()
        return "synced"

    # ---- WebSockets: answering while an event streams from a slow upstream ---------------

    async def fetch(self, request: Request) -> Response:
        if request.headers.get("upgrade", "").lower() == "websocket":
            return self.ctx.accept_websocket(request)
        return Response(str(await self.post((await request.body()).decode())))  # a fetch event

    # ---- alarms take part ---------------------------------------------------------------

    async def arm(self) -> None:
        self.ctx.storage.set_alarm(time.time() * 1000 + 3_600_000)  # the test runs it now

    async def alarm(self, info: Any) -> None:
        await self.post("alarm")

    async def web_socket_message(self, ws: Any, message: str | bytes) -> None:
        text = message if isinstance(message, str) else message.decode()
        if text == "ping":
            ws.send("pong")
            return
        _, token, count = text.split(":")  # "stream:<token>:<chunks>"
        upstream = self.env.UPSTREAM.get_by_name("slow")
        await upstream.hold(token)  # the upstream starts answering when the test says so
        for i in range(int(count)):
            chunk = await upstream.slow(0.05, f"chunk {i}")
            ws.send(chunk)
        ws.send("done")


class GatedRoom(Room):
    """A room that asks for gates with its class attribute (its binding does not say)."""

    concurrency = "gates"


class Upstream(DurableObject):
    """Something slow an object awaits: ``hold`` answers once ``release`` is called for the
    same token; ``slow`` answers after a delay."""

    def __init__(self, ctx: Any, env: Any) -> None:
        super().__init__(ctx, env)
        self.tokens: dict[str, asyncio.Event] = {}

    def _token(self, token: str) -> asyncio.Event:
        return self.tokens.setdefault(token, asyncio.Event())

    async def hold(self, token: str) -> str:
        await self._token(token).wait()
        return token

    async def release(self, token: str) -> None:
        self._token(token).set()

    async def slow(self, seconds: float, answer: Any) -> Any:
        await asyncio.sleep(seconds)
        return answer

    async def peek(self, path: str, key: str) -> Any:
        """What another connection reads of an object's file now: committed data only."""
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            row = conn.execute("SELECT value FROM _raydo_kv WHERE key = ?", (key,)).fetchone()
        return None if row is None else codec.decode(row[0])


class Loader(DurableObject):
    """Scenario 10: the constructor loads the state in a critical section."""

    def __init__(self, ctx: Any, env: Any) -> None:
        super().__init__(ctx, env)
        self.loaded: int | None = None
        ctx.block_concurrency_while(self._load)

    async def _load(self) -> None:
        await asyncio.sleep(0.2)  # a slow initialization that awaits something else
        boots = int(self.ctx.storage.get("boots", 0)) + 1
        self.ctx.storage.put("boots", boots)
        self.loaded = boots

    async def state(self) -> int | None:
        return self.loaded
