"""Durable Objects written with the platform's Python face: awaitable storage, synchronous
SQL and KV, transactions, alarms, hibernating WebSockets through ``WebSocketPair``."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from raydo.actors import CallRefused, ObjectError, ObjectReset
from raydo.gateway.testing import start_app

from ..polling import poll

APP = Path(__file__).parent / "apps" / "hello"


async def test_storage_get_put_list_delete_transactions_and_sync_kv() -> None:
    async with start_app(APP) as app:
        tour = await app.env.COUNTER.get_by_name("tour").storage_tour()
        assert tour == {
            "many": {"list:a": 1, "list:b": 2},
            "listed": {"list:a": 1, "list:b": 2},
            "deleted": 1,
            "in_txn": "kept",
            "rolled": None,
            "sync": "yes",
            "id_length": 64,
            "name": "tour",
        }


async def test_sql_rows_read_as_attributes_and_items() -> None:
    async with start_app(APP) as app:
        stub = app.env.COUNTER.get_by_name("sql")
        assert await stub.say_hello("there") == "Hello, there!"
        assert await stub.record("/a") == ["/a"]
        assert await stub.record("/b") == ["/a", "/b"]
        await app.evict("COUNTER", "sql")  # the table lives in the object's own file
        assert await stub.record("/c") == ["/a", "/b", "/c"]


async def test_an_alarm_set_with_set_alarm_runs_alarm() -> None:
    async with start_app(APP) as app:
        stub = app.env.COUNTER.get_by_name("alarm")
        later = int(time.time() * 1000) + 3_600_000
        assert await stub.schedule(later) == later
        assert await stub.alarmed() == [None, later]
        assert await app.run_alarm("COUNTER", "alarm")
        assert await stub.alarmed() == [1, None]


async def test_a_websocket_pair_accepted_by_the_object_hibernates_and_broadcasts() -> None:
    async with start_app(APP) as app:
        async with app.websocket("/ws/lobby") as first, app.websocket("/ws/lobby") as second:
            await first.send("hi")
            assert await first.recv() == "1: hi"
            assert await second.recv() == "1: hi"
            await app.evict("ROOM", "lobby")  # hibernation: the sockets stay open
            await second.send("yo")
            assert {await first.recv(), await second.recv()} == {"2: yo"}
        refused = await app.http.get("/ws/lobby")
        assert (refused.status_code, refused.text) == (426, "Worker expected Upgrade: websocket")
        stub = app.env.ROOM.get_by_name("lobby")
        assert await poll(stub.closed, lambda code: code is not None) == 1000


async def test_the_platform_handlers_are_not_callable_over_rpc() -> None:
    async with start_app(APP) as app:
        stub = app.env.ROOM.get_by_name("r")
        with pytest.raises(CallRefused, match="webSocketMessage is reserved"):
            await stub.webSocketMessage(None, "x")
        with pytest.raises(CallRefused, match="alarm is reserved"):
            await stub.alarm()
        with pytest.raises(ObjectError):
            await stub.closed(1)  # an ordinary method's own error travels back


async def test_delete_alarm_sql_iteration_block_concurrency_while_and_delete_all() -> None:
    async with start_app(APP) as app:
        rest = await app.env.COUNTER.get_by_name("rest").storage_rest()
        assert rest == {
            "alarm": None,
            "paths": ["/x", "/y"],
            "guarded": "inside",
            "before": {"a": 1, "b": 2, "guarded": True},
            "after": {},
            "tables": [],  # deleteAll drops the object's SQL tables too, as on the platform
        }


async def test_abort_resets_the_object_and_drops_the_events_writes() -> None:
    async with start_app(APP) as app:
        stub = app.env.COUNTER.get_by_name("abort")
        with pytest.raises(ObjectReset, match="on purpose"):
            await stub.put_then_abort()
        with pytest.raises(ObjectReset, match="stub stays broken"):
            await stub.read("aborted")  # as on the platform: a new stub is needed
        fresh = app.env.COUNTER.get_by_name("abort")
        assert await fresh.read("aborted") is None
        assert await fresh.increment() == 1


async def test_get_tags_and_set_web_socket_auto_response() -> None:
    async with start_app(APP) as app, app.websocket("/ws/tagged") as ws:
        await ws.send("ping")
        assert await ws.recv() == "pong"
        await ws.send("tags")
        assert await ws.recv() == "['room', 'tagged'] ping->pong"


async def test_new_unique_id_and_id_from_string_reach_the_same_object_over_http() -> None:
    async with start_app(APP) as app:
        answer = (await app.http.get("/unique")).json()
        assert answer == {"values": [1, 2], "equal": True, "name": None}


async def test_block_concurrency_while_from_the_constructor_runs_before_any_event() -> None:
    async with start_app(APP) as app:
        stub = app.env.LOADER.get_by_name("loader")
        assert await stub.state() == "fresh"  # the load ran first, though never awaited
        await app.evict("LOADER", "loader")
        assert await stub.state() == "stored"  # built again: the load read what it stored
