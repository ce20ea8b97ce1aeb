"""RPC and fetch through stubs: what may be called, what crosses, and what a failure undoes."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from starlette.requests import Request
from starlette.responses import Response

from raydo.actors import CallRefused, ObjectError, RaydoError
from raydo.actors.placement import LocalPlacement
from raydo.storage import codec
from raydo.storage.limits import LimitExceeded, Limits
from tests.actors.sample_objects import Counter, Fragile

from ._support import Place, binding, files_under

UTC = dt.UTC


def activations(placement: LocalPlacement) -> int:
    return sum(host.stats["activations"] for host in placement.hosts.values())


# ---- arguments and results ------------------------------------------------------------------


VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    2**63 - 1,
    -(2**63),
    2**64 - 1,
    2**64,
    2**200 + 12345,
    -(2**200) - 7,
    1.5,
    float("inf"),
    -0.0,
    "",
    "héllo wörld 🦆 \x00 null inside",
    b"",
    b"\x00\xff binary",
    bytes(range(256)) * 100,
    dt.datetime(2024, 2, 29, 23, 59, 58, 123456),
    dt.datetime(2024, 2, 29, 23, 59, 58, 1, tzinfo=UTC),
    dt.datetime(1999, 12, 31, 20, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5, minutes=-30))),
    [],
    {},
    [1, [2, [3, [4, [5]]]]],
    {"nested": {"list": [1, "two", b"3", None, {"deep": 2**100}]}, "when": dt.datetime(2000, 1, 1)},
    {1: "int key", "s": "str key"},
]


async def test_rpc_round_trips_every_codec_type(place: Place) -> None:
    placement = place(binding("COUNTER", "Counter"))
    stub = placement.env.COUNTER.get_by_name("echo")
    for value in VALUES:
        args, kwargs = await stub.echo(value, value, key=value)
        assert args == [value, value]
        assert kwargs == {"key": value}
        for got in (args[0], kwargs["key"]):
            assert type(got) is type(value)
            if isinstance(value, dt.datetime):
                assert got.tzinfo == value.tzinfo
                assert got.utcoffset() == value.utcoffset()
    # tuples travel as lists; many arguments and keywords keep their places
    assert await stub.echo((1, 2), [3], a=(4,), b={"c": (5, 6)}) == [
        [[1, 2], [3]],
        {"a": [4], "b": {"c": [5, 6]}},
    ]
    positional = list(range(50))
    keywords = {f"k{i}": i for i in range(50)}
    assert await stub.echo(*positional, **keywords) == [positional, keywords]


async def test_rpc_passes_args_and_kwargs_to_the_method(place: Place) -> None:
    placement = place(binding("COUNTER", "Counter"))
    stub = placement.env.COUNTER.get_by_name("c")
    assert await stub.increment() == 1
    assert await stub.increment(5) == 6
    assert await stub.increment(by=2**70) == 2**70 + 6
    assert await stub.get() == 2**70 + 6
    # a wrong signature fails inside the object, as Python would
    with pytest.raises(ObjectError) as info:
        await stub.increment(1, 2, 3)
    assert info.value.type_name == "TypeError"
    with pytest.raises(ObjectError, match="unexpected keyword argument 'nope'"):
        await stub.increment(nope=1)
    assert await stub.get() == 2**70 + 6


# ---- what cannot be called ----------------------------------------------------------------


async def test_private_and_reserved_names_are_refused_by_the_stub(
    place: Place, tmp_path: Path
) -> None:
    placement = place(binding("COUNTER", "Counter"))
    stub = placement.env.COUNTER.get_by_name("guarded")
    with pytest.raises(CallRefused, match="_private is private"):
        await stub._private()
    for name in ("alarm", "web_socket_message", "web_socket_close", "ctx", "env"):
        with pytest.raises(CallRefused, match=f"{name} is reserved"):
            await getattr(stub, name)()
    with pytest.raises(AttributeError):
        stub.__dunder__  # noqa: B018
    assert placement.hosts == {}
    assert files_under(tmp_path) == []


async def test_refused_methods_are_refused_by_the_host_too(place: Place, tmp_path: Path) -> None:
    """A caller that bypasses the stub's checks is refused by the host, before any user code."""

    placement = place(binding("COUNTER", "Counter"))
    ns = placement.env.COUNTER
    object_id = ns.id_from_name("guarded")
    cases = {
        "_private": "Counter._private is private",
        "__init__": "Counter.__init__ is private",
        "alarm": "Counter.alarm is reserved",
        "web_socket_message": "Counter.web_socket_message is reserved",
        "fetch": "Counter.fetch is reserved",
        "ctx": "Counter.ctx is reserved",
        "env": "Counter.env is reserved",
        "missing": "Counter has no method 'missing'",
        "sync_method": "Counter.sync_method is not an async method",
        "hits": "Counter has no method 'hits'",
        "not a name": "'not a name' is not a method name",
    }
    for method, message in cases.items():
        packed = codec.encode([[], {}])
        with pytest.raises(CallRefused) as info:
            await ns._send(object_id, _rpc(), [method, packed])
        assert message in str(info.value)
        assert not info.value.retryable
    assert activations(placement) == 0
    assert Counter.constructed == 0
    assert files_under(tmp_path) == []


def _rpc() -> Any:
    from raydo.actors.types import EventKind

    return EventKind.RPC


async def test_missing_and_sync_methods_are_refused_through_the_stub(
    place: Place, tmp_path: Path
) -> None:
    placement = place(binding("COUNTER", "Counter"))
    stub = placement.env.COUNTER.get_by_name("guarded")
    with pytest.raises(CallRefused, match="Counter has no method 'nope'"):
        await stub.nope(1, x=2)
    with pytest.raises(CallRefused, match="not an async method: RPC methods are `async def`"):
        await stub.sync_method()
    assert activations(placement) == 0
    assert Counter.constructed == 0
    assert files_under(tmp_path) == []
    # the object itself is fine
    assert await stub.increment() == 1
    assert Counter.constructed == 1


async def test_an_unencodable_argument_is_refused_before_sending(
    place: Place, tmp_path: Path
) -> None:
    placement = place(binding("COUNTER", "Counter"))
    stub = placement.env.COUNTER.get_by_name("c")
    with pytest.raises(codec.EncodeError) as info:
        await stub.echo(1, {2, 3})
    message = str(info.value)
    assert "[0][1]" in message and "set" in message
    with pytest.raises(codec.EncodeError) as info:
        await stub.echo(tags={"a": [1, object()]})
    message = str(info.value)
    assert "[1]['tags']['a'][1]" in message and "object" in message
    with pytest.raises(codec.EncodeError, match="value\\[0\\]\\[0\\] has type PosixPath"):
        await stub.echo(tmp_path)
    assert placement.hosts == {}
    assert files_under(tmp_path) == []
    # the refused calls used no sequence numbers: the next call goes through
    assert await stub.increment() == 1


async def test_an_oversized_argument_is_refused_before_sending(
    place: Place, tmp_path: Path
) -> None:
    placement = place(binding("COUNTER", "Counter"), limits=Limits(message_bytes=1000))
    stub = placement.env.COUNTER.get_by_name("c")
    with pytest.raises(LimitExceeded) as info:
        await stub.echo(b"x" * 1000)
    assert info.value.limit == "message_bytes"
    assert "the arguments of echo()" in str(info.value)
    assert placement.hosts == {}
    assert files_under(tmp_path) == []
    args, _ = await stub.echo(b"x" * 900)
    assert args == [b"x" * 900]


async def test_an_oversized_result_fails_and_rolls_back(place: Place) -> None:
    placement = place(binding("COUNTER", "Counter"), limits=Limits(message_bytes=1000))
    stub = placement.env.COUNTER.get_by_name("c")
    await stub.put("kept", 1)
    with pytest.raises(LimitExceeded) as info:
        await stub.huge_result(2000)
    assert info.value.limit == "message_bytes"
    assert isinstance(info.value, RaydoError)  # catchable as either
    assert "message_bytes" in str(info.value)
    assert await stub.read("huge") is None
    assert await stub.huge_result(10) == b"x" * 10
    assert await stub.read("huge") is True
    assert await stub.read("kept") == 1


async def test_the_first_write_of_a_failing_event_leaves_the_object_usable(place: Place) -> None:
    placement = place(binding("COUNTER", "Counter"))
    stub = placement.env.COUNTER.get_by_name("fresh")
    with pytest.raises(ObjectError, match="boom while writing first"):
        await stub.fail_after_write("first")  # the object's very first write
    assert await stub.read("first") is None
    assert await stub.increment() == 1
    assert await stub.read("first") is None


# ---- failures inside the object -----------------------------------------------------------


async def test_an_unencodable_result_is_an_object_error_and_rolls_back(place: Place) -> None:
    placement = place(binding("COUNTER", "Counter"))
    stub = placement.env.COUNTER.get_by_name("c")
    await stub.put("kept", 1)
    with pytest.raises(ObjectError) as info:
        await stub.unencodable_result("lost")
    err = info.value
    assert err.remote
    assert "Counter.unencodable_result returned an unencodable value" in str(err)
    assert "set" in str(err)
    assert await stub.read("lost") is None
    assert await stub.read("kept") == 1


async def test_an_exception_rolls_back_the_event_and_drops_the_instance(place: Place) -> None:
    placement = place(binding("COUNTER", "Counter"))
    stub = placement.env.COUNTER.get_by_name("c")
    assert await stub.increment() == 1
    assert await stub.memory() == 1
    assert await stub.memory() == 2
    assert Counter.constructed == 1
    with pytest.raises(ObjectError) as info:
        await stub.fail_after_write("doomed")
    err = info.value
    assert isinstance(err, RaydoError)
    assert err.type_name == "ValueError"
    assert err.message == "boom while writing doomed"
    assert str(err) == "ValueError: boom while writing doomed"
    assert err.remote is True
    assert err.retryable is False
    assert not err.overloaded
    # the failed event's write is gone, earlier commits stay
    assert await stub.read("doomed") is None
    assert await stub.get() == 1
    # a new instance: its memory starts again
    assert Counter.constructed == 2
    assert await stub.memory() == 1
    assert Counter.instances[0] is not Counter.instances[1]
    assert await stub.increment() == 2


async def test_a_failing_constructor_leaves_no_half_object(place: Place) -> None:
    placement = place(binding("FRAGILE", "Fragile"))
    stub = placement.env.FRAGILE.get_by_name("f")
    for attempt in (1, 2):
        with pytest.raises(ObjectError) as info:
            await stub.ping()
        err = info.value
        assert err.type_name == "RuntimeError"
        assert "the constructor raised" in err.message
        assert "cannot start: the config is missing" in err.message
        assert Fragile.attempts == attempt
    assert Fragile.constructed == 0
    assert activations(placement) == 0
    Fragile.fail = False
    # constructed afresh; the failed constructors' writes were rolled back
    assert await stub.ping() == [1, 1]
    assert await stub.ping() == [1, 1]
    assert Fragile.attempts == 3
    assert activations(placement) == 1


async def test_forgetting_super_init_is_explained(place: Place) -> None:
    placement = place(binding("FORGETFUL", "Forgetful"))
    stub = placement.env.FORGETFUL.get_by_name("f")
    for _ in range(2):
        with pytest.raises(ObjectError) as info:
            await stub.ping()
        assert info.value.type_name == "TypeError"
        assert "Forgetful.__init__ did not set self.ctx" in str(info.value)
        assert "super().__init__(ctx, env)" in str(info.value)
    assert activations(placement) == 0


# ---- fetch --------------------------------------------------------------------------------


async def test_fetch_with_a_url(place: Place) -> None:
    placement = place(binding("FETCHER", "Fetcher"), binding("NOFETCH", "NoFetch"))
    stub = placement.env.FETCHER.get_by_name("web")
    response = await stub.fetch(
        "https://example.com:8443/rooms/42?x=1&y=two%20words",
        method="post",
        headers={"X-Custom": "value", "Content-Type": "text/plain"},
        body="héllo",
    )
    assert isinstance(response, Response)
    assert response.status_code == 201
    assert response.headers["x-object"] == "fetcher"
    seen = json.loads(bytes(response.body))
    assert seen["method"] == "POST"
    assert seen["path"] == "/rooms/42"
    assert seen["query"] == "x=1&y=two%20words"
    assert seen["params"] == {"x": "1", "y": "two words"}
    assert seen["headers"]["x-custom"] == "value"
    assert seen["headers"]["content-type"] == "text/plain"
    assert seen["headers"]["host"] == "example.com:8443"
    assert seen["headers"]["content-length"] == str(len("héllo".encode()))
    assert seen["body"].encode("latin-1").decode() == "héllo"
    assert seen["name"] == "web"
    # a path alone, bytes body, headers as pairs; defaults to GET
    response = await stub.fetch("/only/path?q=", headers=[("a", "1"), ("b", "2")])
    seen = json.loads(response.body)
    assert seen["method"] == "GET"
    assert seen["path"] == "/only/path"
    assert seen["query"] == "q="
    assert seen["headers"]["a"] == "1" and seen["headers"]["b"] == "2"
    assert seen["body"] == ""
    response = await stub.fetch("/bin", method="PUT", body=b"\x00\xff")
    assert json.loads(response.body)["body"] == "\x00\xff"


async def test_fetch_rejects_bad_urls_and_bodies_before_sending(place: Place) -> None:
    placement = place(
        binding("FETCHER", "Fetcher"),
        binding("NOFETCH", "NoFetch"),
        limits=Limits(request_bytes=10),
    )
    stub = placement.env.FETCHER.get_by_name("web")
    with pytest.raises(ValueError, match="absolute URL or a path"):
        await stub.fetch("relative/path")
    with pytest.raises(TypeError, match="fetch body must be bytes or str"):
        await stub.fetch("/x", method="POST", body=12)
    with pytest.raises(TypeError, match="starlette Request or a URL string"):
        await stub.fetch(b"/x")
    with pytest.raises(LimitExceeded, match="request_bytes"):
        await stub.fetch("/x", method="POST", body=b"y" * 11)
    assert placement.hosts == {}


async def test_fetch_with_a_starlette_request(place: Place) -> None:
    chunks = [b"part one, ", b"part two"]

    async def receive() -> dict[str, Any]:
        if chunks:
            return {"type": "http.request", "body": chunks.pop(0), "more_body": bool(chunks)}
        return {"type": "http.disconnect"}

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "PATCH",
        "scheme": "http",
        "path": "/items/7",
        "raw_path": b"/items/7",
        "query_string": b"fields=a,b&n=3",
        "root_path": "",
        "headers": [(b"host", b"gateway.local"), (b"x-trace", b"abc123")],
        "client": ("127.0.0.1", 5555),
        "server": ("gateway.local", 80),
    }
    placement = place(binding("FETCHER", "Fetcher"), binding("NOFETCH", "NoFetch"))
    stub = placement.env.FETCHER.get_by_name("web")
    response = await stub.fetch(Request(scope, receive))
    assert response.status_code == 201
    seen = json.loads(response.body)
    assert seen["method"] == "PATCH"
    assert seen["path"] == "/items/7"
    assert seen["query"] == "fields=a,b&n=3"
    assert seen["params"] == {"fields": "a,b", "n": "3"}
    assert seen["headers"]["x-trace"] == "abc123"
    assert seen["headers"]["host"] == "gateway.local"
    assert seen["body"] == "part one, part two"


async def test_fetch_collects_a_streaming_response(place: Place) -> None:
    placement = place(binding("FETCHER", "Fetcher"), binding("NOFETCH", "NoFetch"))
    response = await placement.env.FETCHER.get_by_name("web").fetch("/stream")
    assert response.status_code == 200
    assert response.body == b"hello, streaming world"
    assert response.headers["content-length"] == str(len(b"hello, streaming world"))
    assert response.headers["x-s"] == "1"
    assert response.headers["content-type"].startswith("text/plain")


async def test_a_streaming_response_over_the_message_limit_fails(place: Place) -> None:
    placement = place(
        binding("FETCHER", "Fetcher"),
        binding("NOFETCH", "NoFetch"),
        limits=Limits(message_bytes=12),
    )
    with pytest.raises(LimitExceeded) as info:
        await placement.env.FETCHER.get_by_name("web").fetch("/stream")
    assert info.value.limit == "message_bytes"
    assert "message_bytes" in str(info.value)


async def test_fetch_must_return_a_response(place: Place) -> None:
    placement = place(binding("FETCHER", "Fetcher"), binding("NOFETCH", "NoFetch"))
    stub = placement.env.FETCHER.get_by_name("web")
    assert (await stub.fetch("/first")).status_code == 201
    with pytest.raises(ObjectError) as info:
        await stub.fetch("/not-a-response")
    assert info.value.type_name == "TypeError"
    assert "fetch must return a starlette Response, not dict" in str(info.value)
    # the object goes on working; its earlier write stands
    response = await stub.fetch("/second")
    assert json.loads(response.body)["path"] == "/second"


async def test_fetch_to_an_object_without_fetch_is_refused(place: Place, tmp_path: Path) -> None:
    placement = place(binding("FETCHER", "Fetcher"), binding("NOFETCH", "NoFetch"))
    stub = placement.env.NOFETCH.get_by_name("n")
    with pytest.raises(CallRefused, match="NoFetch has no fetch handler"):
        await stub.fetch("/anything")
    assert activations(placement) == 0
    assert files_under(tmp_path) == []
    assert await stub.ping() == "pong"
