"""The wire's records match the protocol tables in their modules' docstrings, and each
record survives encoding, msgpack and decoding unchanged."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

from raydo.actors import _frames, _payloads
from raydo.actors._frames import (
    CALLER_READS,
    HOST_READS,
    RECORDS,
    TO_CALLER,
    TO_HOST,
    EventFrame,
    Fail,
    FrameKind,
    Hello,
    Ok,
    PushFrame,
    Sockets,
    StreamCancel,
    StreamChunk,
    StreamCredit,
    StreamEnd,
    StreamOpen,
    Welcome,
    decode_frame,
    read_event,
)
from raydo.actors._payloads import (
    PAYLOADS,
    PUSHES,
    AlarmRun,
    AutoPush,
    ClosePush,
    Control,
    FetchReply,
    FetchRequest,
    RpcCall,
    SendPush,
    SocketClose,
    SocketError,
    SocketMessage,
    Upgrade,
    decode_payload,
    decode_push,
)
from raydo.actors.types import Event, EventKind
from raydo.storage import codec


def table(doc: str | None) -> list[list[str]]:
    """The rows of the first reStructuredText simple table in ``doc``, cell by cell."""
    assert doc is not None
    lines = doc.splitlines()
    rules = [i for i, line in enumerate(lines) if line.startswith("=") and set(line) <= {"=", " "}]
    assert len(rules) >= 3, "no table found"
    rule = lines[rules[0]]
    spans, start = [], 0
    for part in rule.split(" "):
        spans.append(start)
        start += len(part) + 1
    rows = []
    for line in lines[rules[1] + 1 : rules[2]]:
        bounds = [*spans[1:], None]
        rows.append([line[a:b].strip() for a, b in zip(spans, bounds, strict=True)])
    return rows


def wire(value: Any) -> Any:
    """What the other end unpacks."""
    return codec.decode(codec.encode(value))


def test_the_frame_table_names_every_frame_with_its_record_and_fields() -> None:
    rows = table(_frames.__doc__)
    assert [row[0] for row in rows] == [kind.name for kind in FrameKind]
    for name, number, to, record, fields in rows:
        kind = FrameKind[name]
        assert int(number) == kind
        assert RECORDS[kind].__name__ == record
        assert RECORDS[kind]._fields == tuple(f.strip() for f in fields.split(","))
        assert (to in ("host", "either")) == (kind in TO_HOST), name
        assert (to in ("caller", "either")) == (kind in TO_CALLER), name
        assert (kind in TO_HOST) == (kind in HOST_READS)
        assert (kind in TO_CALLER) == (kind in CALLER_READS)


FRAMES = [
    Hello("token", "caller", "gateway"),
    EventFrame(7, 3, "ROOM", "ab" * 32, "lobby", "chain", 1, ["m", b"\x90"], None),
    EventFrame(8, 4, "ROOM", "ab" * 32, None, "chain", 0, [], {"traceparent": "00-x"}),
    Welcome("ROOM/shard/0"),
    Ok(7, [200, [], b"hi"]),
    Fail(7, ["overloaded", "Overloaded", "full", False]),
    PushFrame(["send", ["s1"], "hi"]),
    Sockets([["ab" * 32, "g.1"]]),
    StreamOpen(7),
    StreamChunk(7, b"\x00chunk"),
    StreamEnd(7, None),
    StreamEnd(7, ["stream", "StreamBroken", "gone", False]),
    StreamCredit(7, 65536),
    StreamCancel(7, ["limit", "stream_bytes", "too long", False]),
]


@pytest.mark.parametrize("frame", FRAMES, ids=lambda f: type(f).__name__)
def test_each_frame_survives_the_wire(frame: Any) -> None:
    encoded = frame.encode()
    assert encoded[0] == next(k for k, r in RECORDS.items() if r is type(frame))
    assert len(encoded) == 1 + len(frame._fields)
    reads = HOST_READS if encoded[0] in HOST_READS else CALLER_READS
    assert decode_frame(wire(encoded), reads) == frame


def test_an_event_frame_carries_every_field_of_its_event() -> None:
    event = Event("ROOM", "ab" * 32, "lobby", "chain", EventKind.RPC, ["m", b""], "c", 5, None)
    event.seq = 5
    frame = decode_frame(wire(EventFrame.of(9, event).encode()), HOST_READS)
    assert isinstance(frame, EventFrame) and frame.req_id == 9
    assert frame.event("caller") == Event(
        "ROOM", "ab" * 32, "lobby", "chain", EventKind.RPC, ["m", b""], "caller", 5, None
    )


@pytest.mark.parametrize(
    ("raw", "reads"),
    [
        ([], HOST_READS),
        ("not a frame", HOST_READS),
        ([FrameKind.OK, 1, None], HOST_READS),  # a reply is nothing a host reads
        ([FrameKind.EVENT, 1, 2, "B", "ab", None, "c", 0, []], HOST_READS),  # no trace field
        ([FrameKind.EVENT, 1, 2, "B", "ab", None, "c", 0, [], ["not", "a", "map"]], HOST_READS),
        ([FrameKind.HELLO, 5, "caller", "gateway"], HOST_READS),
        ([FrameKind.SOCKETS, [["only one"]]], HOST_READS),
        ([FrameKind.HELLO, "t", "c", "g"], CALLER_READS),
        ([FrameKind.OK, "one", None], CALLER_READS),
        ([FrameKind.FAIL, 1, "not the error's wire form"], CALLER_READS),
        ([99], CALLER_READS),
    ],
)
def test_a_malformed_frame_is_refused(raw: Any, reads: Any) -> None:
    with pytest.raises(ValueError):
        decode_frame(raw, reads)


def test_the_payload_table_names_every_payload_with_its_fields() -> None:
    rows = table(_payloads.__doc__)
    carried: dict[str, Any] = {}
    for name, carried_as, fields in rows:
        record = getattr(_payloads, name)
        names = [f.strip() for f in fields.split(",")]
        assert record._fields == tuple(n.rstrip("?*") for n in names), name
        for field in names:  # "?": left off when None; "*": the rest of the array
            if field.endswith("?"):
                assert record._field_defaults[field[:-1]] is None, name
            elif field.endswith("*"):
                assert record._field_defaults[field[:-1]] == (), name
            else:
                assert field not in record._field_defaults, name
        carried[carried_as] = record
    for kind, decode in PAYLOADS.items():
        assert carried[f"event {kind.name}"].decode == decode
    for operation, push in PUSHES.items():
        assert carried[f"push {operation}"] is push
    assert carried["reply FETCH"] is FetchReply
    assert carried["upgrade"] is Upgrade
    assert len(carried) == len(PAYLOADS) + len(PUSHES) + 2


PAYLOAD_SAMPLES: list[tuple[EventKind, Any]] = [
    (EventKind.FETCH, FetchRequest("GET", "/a", b"q=1", [[b"host", b"x"]], b"")),
    (EventKind.FETCH, FetchRequest("GET", "/ws", b"", [], b"", Upgrade("g.1", "g"))),
    (EventKind.RPC, RpcCall("increment", codec.encode([[1], {}]))),
    (EventKind.ALARM, AlarmRun(2, "due")),
    (EventKind.CONTROL, Control.sql("SELECT 1", [])),
    (EventKind.CONTROL, Control.alarm()),
    (EventKind.CONTROL, Control.evict()),
    (EventKind.WS_MESSAGE, SocketMessage("g.1", b"\x00")),
    (EventKind.WS_CLOSE, SocketClose("g.1", 1000, "bye", True)),
    (EventKind.WS_ERROR, SocketError("g.1", "broken")),
]


@pytest.mark.parametrize(("kind", "payload"), PAYLOAD_SAMPLES, ids=lambda p: repr(p)[:30])
def test_each_payload_survives_the_wire(kind: EventKind, payload: Any) -> None:
    encoded = payload.encode()
    assert isinstance(encoded, list)  # hosts read payloads as lists
    assert decode_payload(kind, wire(encoded)) == payload


def test_optional_fields_are_left_off_when_none() -> None:
    assert len(FetchRequest("GET", "/", b"", [], b"").encode()) == 5
    assert len(FetchReply(200, [], b"").encode()) == 3
    reply = FetchReply(101, [], b"", ("ping", "pong"))
    assert FetchReply.decode(wire(reply.encode())) == reply
    assert FetchReply.decode([101, [], b"", None]).auto_response is None  # as hosts send it
    assert Control.sql("SELECT ?", [1]).encode() == ["sql", "SELECT ?", [1]]


@pytest.mark.parametrize(
    "push",
    [
        SendPush("ab", ["a", "b"], "hi"),
        ClosePush("ab", ["a"], 4000, "bye"),
        AutoPush("ab", ["a"], ("p", "q")),
        AutoPush("ab", ["a"], None),
    ],
    ids=lambda p: type(p).__name__,
)
def test_each_push_survives_the_wire(push: Any) -> None:
    assert decode_push(wire(push.encode())) == push


@pytest.mark.parametrize(
    ("kind", "raw"),
    [
        (EventKind.FETCH, ["GET", "/"]),
        (EventKind.FETCH, ["GET", "/", "not bytes", [], b""]),
        (EventKind.RPC, "increment"),
        (EventKind.ALARM, [0, "whenever"]),
        (EventKind.CONTROL, []),
        (EventKind.WS_MESSAGE, ["sid", 5]),
        (EventKind.WS_CLOSE, ["sid", 1000]),
    ],
)
def test_a_malformed_payload_is_refused(kind: EventKind, raw: Any) -> None:
    with pytest.raises(ValueError):
        decode_payload(kind, raw)


def test_a_malformed_push_is_refused() -> None:
    for raw in (
        ["send", "ab", ["a"]],
        ["sned", "ab", ["a"], "x"],
        ["close", "ab", "a", 1000, ""],
        ["close", "ab", ["a"], "1000", ""],
        ["send", ["a"], "no object"],
        ["send", "ab", [1], "x"],
        ["auto", "ab", ["a"], "pq"],
        [],
    ):
        with pytest.raises(ValueError):
            decode_push(raw)


def test_read_event_is_decode_then_event_without_the_record() -> None:
    event = Event("ROOM", "ab" * 32, None, "chain", EventKind.WS_CLOSE, ["s", 1000, "", True])
    raw = wire(EventFrame.pack(4, event))
    assert raw == wire(EventFrame.of(4, event).encode())
    frame = decode_frame(raw, HOST_READS)
    assert isinstance(frame, EventFrame)
    assert read_event(raw, "caller") == (4, frame.event("caller"))
    assert read_event(wire(Hello("t", "c", "g").encode()), "caller") is None
    assert [kind.value for kind in EventKind] == list(range(len(EventKind)))  # read by index
    with pytest.raises(ValueError, match="unknown event kind"):
        read_event([FrameKind.EVENT, 1, 2, "B", "ab", None, "c", 99, [], None], "caller")
    assert wire(Ok.pack(3, "r")) == wire(Ok(3, "r").encode())
    assert wire(Fail.pack(3, [])) == wire(Fail(3, []).encode())
    assert wire(PushFrame.pack(["send", [], ""])) == wire(PushFrame(["send", [], ""]).encode())


WIRE_MODULES = {"_frames.py", "_payloads.py", "_wire.py"}


def _indexed_records(source: str) -> list[int]:
    """Lines where ``source`` indexes an event's payload, a frame or a push by position."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Subscript):
            continue
        value = node.value
        name = value.attr if isinstance(value, ast.Attribute) else getattr(value, "id", None)
        if name in ("payload", "frame", "push") and isinstance(
            node.slice, ast.Constant | ast.Slice
        ):
            lines.append(node.lineno)
    return lines


def test_only_the_wire_modules_take_payloads_and_frames_apart() -> None:
    root = Path(_payloads.__file__).resolve().parent.parent
    found = {
        f"{path.relative_to(root)}:{line}"
        for package in ("actors", "bindings", "gateway")
        for path in sorted((root / package).rglob("*.py"))
        if path.name not in WIRE_MODULES
        for line in _indexed_records(path.read_text())
    }
    assert found == set()
    assert _indexed_records("event.payload[0]\nframe[1:]\nrows[0]") == [1, 2]
