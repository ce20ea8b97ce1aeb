"""Object ids: derivation from names, uniqueness, parsing, namespaces, and that they are free."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from raydo.actors import Namespace, ObjectId, Stub
from raydo.storage.limits import LimitExceeded, Limits

from ._support import REPO_ROOT, Place, binding, files_under, make_spec, placed

HEX64 = re.compile(r"[0-9a-f]{64}")


async def test_id_from_name_is_the_same_for_every_placement_of_the_app(tmp_path: Path) -> None:
    spec_a = make_spec(tmp_path / "a", binding("COUNTER", "Counter"))
    spec_b = make_spec(tmp_path / "b", binding("COUNTER", "Counter", shards=9))
    async with placed(spec_a) as one, placed(spec_b) as two:
        first = one.env.COUNTER.id_from_name("room-1")
        second = two.env.COUNTER.id_from_name("room-1")
        assert first.hex == second.hex
        assert first == second
        assert str(first) == first.hex
        assert HEX64.fullmatch(first.hex)
        assert first.name == "room-1"
        # the id of one placement parses in the other: the same namespace key
        parsed = two.env.COUNTER.id_from_string(str(first))
        assert parsed == first
        assert one.env.COUNTER.id_from_name("room-2") != first


async def test_id_from_name_is_the_same_in_another_process(place: Place, tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "from actors import BindingSpec, RuntimeSpec\n"
        "from actors.placement import LocalPlacement\n"
        "spec = RuntimeSpec('actors-tests', sys.argv[1], sys.argv[2], bindings=(\n"
        "    BindingSpec('COUNTER', 'tests.actors.sample_objects:Counter'),))\n"
        "print(LocalPlacement(spec).env.COUNTER.id_from_name('room-1 🦆').hex)\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", script, REPO_ROOT, str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
        env=env,
        timeout=60,
    ).stdout.strip()

    placement = place(binding("COUNTER", "Counter"))
    assert placement.env.COUNTER.id_from_name("room-1 🦆").hex == out


async def test_id_from_name_differs_by_app_binding_and_namespace_key(tmp_path: Path) -> None:
    base = make_spec(tmp_path, binding("COUNTER", "Counter"), binding("OTHER", "Counter"))
    other_app = make_spec(tmp_path, binding("COUNTER", "Counter"), app_name="another-app")
    keyed = make_spec(tmp_path, binding("COUNTER", "Counter", namespace_key="s3cret"))
    keyed_too = make_spec(
        tmp_path, binding("COUNTER", "Counter", namespace_key="s3cret"), app_name="renamed"
    )
    async with (
        placed(base) as p_base,
        placed(other_app) as p_app,
        placed(keyed) as p_keyed,
        placed(keyed_too) as p_keyed_too,
    ):
        ids = {
            "base": p_base.env.COUNTER.id_from_name("x").hex,
            "binding": p_base.env.OTHER.id_from_name("x").hex,
            "app": p_app.env.COUNTER.id_from_name("x").hex,
            "key": p_keyed.env.COUNTER.id_from_name("x").hex,
        }
        assert len(set(ids.values())) == 4, ids
        # a configured key alone decides: renaming the app keeps every id
        assert p_keyed_too.env.COUNTER.id_from_name("x").hex == ids["key"]
        p_keyed_too.env.COUNTER.id_from_string(ids["key"])
        with pytest.raises(ValueError, match="does not belong to namespace COUNTER"):
            p_app.env.COUNTER.id_from_string(ids["base"])


async def test_new_unique_id_is_new_every_time(place: Place) -> None:
    placement = place(binding("COUNTER", "Counter"))
    ns = placement.env.COUNTER
    made = [ns.new_unique_id() for _ in range(200)]
    assert len({i.hex for i in made}) == 200
    for object_id in made:
        assert HEX64.fullmatch(object_id.hex)
        assert object_id.name is None
        assert object_id.namespace == "COUNTER"
        assert ns.id_from_string(object_id.hex) == object_id
    assert ns.id_from_name("a") not in made


async def test_id_from_string_round_trips_without_the_name(place: Place) -> None:
    placement = place(binding("COUNTER", "Counter"))
    ns = placement.env.COUNTER
    named = ns.id_from_name("alice")
    parsed = ns.id_from_string(str(named))
    assert parsed == named
    assert hash(parsed) == hash(named)
    assert parsed.equals(named)
    assert parsed.hex == named.hex
    assert parsed.name is None
    assert named.name == "alice"
    assert "alice" in repr(named)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "abc",
        "0" * 63,
        "0" * 65,
        "0" * 64 + "\n",
        " " + "0" * 63,
        "g" * 64,
        "z" + "0" * 63,
        "-" * 64,
        "0x" + "0" * 62,
    ],
)
async def test_id_from_string_rejects_malformed_text(place: Place, bad: str) -> None:
    placement = place(binding("COUNTER", "Counter"))
    with pytest.raises(ValueError, match="64 lowercase hex"):
        placement.env.COUNTER.id_from_string(bad)


async def test_id_from_string_rejects_uppercase_non_str_and_forged_macs(place: Place) -> None:
    placement = place(binding("COUNTER", "Counter"))
    ns = placement.env.COUNTER
    good = ns.id_from_name("bob").hex
    with pytest.raises(ValueError, match="64 lowercase hex"):
        ns.id_from_string(good.upper())
    for not_text in (None, 12, good.encode(), [good]):
        with pytest.raises(ValueError, match="64 lowercase hex"):
            ns.id_from_string(not_text)
    # same shape, one digit of the MAC changed: not this namespace's
    forged = good[:-1] + ("0" if good[-1] != "0" else "1")
    with pytest.raises(ValueError, match="does not belong to namespace COUNTER"):
        ns.id_from_string(forged)
    # a random head with a made-up MAC
    with pytest.raises(ValueError, match="does not belong to namespace COUNTER"):
        ns.id_from_string("ab" * 32)


async def test_id_from_string_rejects_an_id_of_another_namespace(place: Place) -> None:
    placement = place(binding("COUNTER", "Counter"), binding("OTHER", "Counter"))
    theirs = placement.env.OTHER.id_from_name("shared-name")
    with pytest.raises(ValueError) as info:
        placement.env.COUNTER.id_from_string(str(theirs))
    assert "does not belong to namespace COUNTER" in str(info.value)
    unique = placement.env.OTHER.new_unique_id()
    with pytest.raises(ValueError, match="does not belong to namespace COUNTER"):
        placement.env.COUNTER.id_from_string(unique.hex)


@pytest.mark.parametrize(
    "name",
    ["../../etc/passwd", "a\x00b", "\x00", "", "🦆🔥", "room/../../x", "Ω" * 300, " ", "\n"],
)
async def test_any_unicode_name_gives_a_valid_id(place: Place, tmp_path: Path, name: str) -> None:
    placement = place(binding("COUNTER", "Counter"))
    ns = placement.env.COUNTER
    object_id = ns.id_from_name(name)
    assert HEX64.fullmatch(object_id.hex)
    assert object_id.name == name
    assert ns.id_from_string(object_id.hex) == object_id
    assert ns.id_from_name(name) == object_id
    # the object it names is reachable and stored under its hex only
    stub = ns.get_by_name(name)
    assert await stub.whoami() == [object_id.hex, name]
    assert await stub.increment() == 1
    files = files_under(tmp_path)
    assert files, "the object wrote nothing"
    expected_dir = tmp_path / "COUNTER" / object_id.hex[:2]
    assert all(f.parent == expected_dir for f in files), files
    assert (expected_dir / f"{object_id.hex}.sqlite") in files


async def test_names_that_differ_give_different_ids(place: Place) -> None:
    placement = place(binding("COUNTER", "Counter"))
    ns = placement.env.COUNTER
    names = ["", "\x00", "a", "a\x00", "A", "a ", "é", "e\u0301", "🦆"]
    assert len({ns.id_from_name(n).hex for n in names}) == len(names)


async def test_bad_names_are_refused(tmp_path: Path) -> None:
    limits = Limits(name_bytes=16)
    spec = make_spec(tmp_path, binding("COUNTER", "Counter"), limits=limits)
    async with placed(spec) as placement:
        ns = placement.env.COUNTER
        with pytest.raises(ValueError, match="lone surrogates"):
            ns.id_from_name("bad\ud800name")
        with pytest.raises(ValueError, match="lone surrogates"):
            ns.get_by_name("\udfff")
        assert ns.id_from_name("x" * 16).name == "x" * 16
        with pytest.raises(LimitExceeded) as info:
            ns.id_from_name("x" * 17)
        assert info.value.limit == "name_bytes"
        assert "17 bytes" in str(info.value)
        # the limit counts UTF-8 bytes, not characters: 5 ducks are 20 bytes
        with pytest.raises(LimitExceeded, match="name_bytes"):
            ns.get_by_name("🦆" * 5)
        for not_a_name in (None, 7, b"bytes"):
            with pytest.raises(TypeError, match="object names are str"):
                ns.id_from_name(not_a_name)
    assert files_under(tmp_path) == []


async def test_default_name_limit_is_one_kib(place: Place) -> None:
    placement = place(binding("COUNTER", "Counter"))
    ns = placement.env.COUNTER
    ns.id_from_name("n" * 1024)
    with pytest.raises(LimitExceeded, match="name_bytes"):
        ns.id_from_name("n" * 1025)


async def test_get_checks_the_id(place: Place) -> None:
    placement = place(binding("COUNTER", "Counter"), binding("OTHER", "Counter"))
    ns = placement.env.COUNTER
    mine = ns.id_from_name("mine")
    for wrong in (str(mine), mine.hex.encode(), None, 3):
        with pytest.raises(TypeError, match="get\\(\\) takes an ObjectId"):
            ns.get(wrong)
    theirs = placement.env.OTHER.id_from_name("mine")
    with pytest.raises(ValueError, match="does not belong to namespace COUNTER"):
        ns.get(theirs)
    # relabelling another namespace's id does not make it ours
    relabelled = ObjectId(theirs.hex, "COUNTER", "mine")
    with pytest.raises(ValueError, match="does not belong to namespace COUNTER"):
        ns.get(relabelled)
    # and our hex labelled with another namespace is refused too
    with pytest.raises(ValueError, match="does not belong to namespace COUNTER"):
        ns.get(ObjectId(mine.hex, "OTHER"))
    stub = ns.get(mine)
    assert isinstance(stub, Stub)
    assert stub.id == mine
    assert stub.name == "mine"
    assert ns.get(ns.id_from_string(mine.hex)).name is None


async def test_making_ids_and_stubs_contacts_and_creates_nothing(
    place: Place, tmp_path: Path
) -> None:
    placement = place(binding("COUNTER", "Counter"))
    ns = placement.env.COUNTER
    assert isinstance(ns, Namespace)
    assert ns.name == "COUNTER"
    stubs = [ns.get_by_name(f"obj-{i}") for i in range(50)]
    stubs += [ns.get(ns.new_unique_id()) for _ in range(50)]
    stubs += [ns.get(ns.id_from_string(ns.id_from_name("z").hex))]
    methods = [stub.increment for stub in stubs]  # attribute access sends nothing
    assert all(callable(m) for m in methods)
    assert repr(stubs[0]).startswith("Stub(ObjectId(COUNTER:")
    assert placement.hosts == {}
    assert files_under(tmp_path) == []
    assert list(tmp_path.iterdir()) == []
    # the first call is what creates the host and the object's file
    assert await stubs[0].increment() == 1
    assert len(placement.hosts) == 1
    names = {p.name for p in files_under(tmp_path)}
    assert f"{stubs[0].id.hex}.sqlite" in names
    assert all(n.startswith(stubs[0].id.hex) for n in names), names


async def test_the_object_sees_its_id_and_name(place: Place) -> None:
    placement = place(binding("COUNTER", "Counter"))
    ns = placement.env.COUNTER
    named = ns.id_from_name("carol")
    # reached through the bare hex first: the object does not know its name yet
    assert await ns.get(ns.id_from_string(named.hex)).whoami() == [named.hex, None]
    # a stub made from the name tells it
    assert await ns.get_by_name("carol").whoami() == [named.hex, "carol"]
    assert await ns.get(ns.id_from_string(named.hex)).whoami() == [named.hex, "carol"]
    unique = ns.new_unique_id()
    assert await ns.get(unique).whoami() == [unique.hex, None]


def test_ids_of_names_are_kept_bounded_and_stay_exact() -> None:
    from raydo.actors._ids import NAME_CACHE_SIZE, IdScheme

    scheme = IdScheme("NS", b"k" * 32, name_bytes=1024)
    fresh = IdScheme("NS", b"k" * 32, name_bytes=1024)
    first = scheme.from_name("room-1")
    again = scheme.from_name("room-1")
    assert first == again and first is not again  # a new id each time, equal
    assert again.name == "room-1" and again.namespace == "NS"
    for i in range(NAME_CACHE_SIZE + 10):  # past the bound: old names are derived again
        scheme.from_name(f"n{i}")
    assert scheme.from_name("room-1") == fresh.from_name("room-1")
    # Failures are never kept: the same bad name fails every time, with its own error.
    for _ in range(2):
        with pytest.raises(LimitExceeded):
            scheme.from_name("x" * 1025)
    with pytest.raises(TypeError):
        scheme.from_name(b"bytes")  # type: ignore[arg-type]
    assert scheme._hex_of_name.cache_info().currsize <= NAME_CACHE_SIZE
