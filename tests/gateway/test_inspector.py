"""The inspector's JSON routes on a served app: what the test's requests made shows there,
the console reads and refuses writes, parameters are bounded, and under ``serve``'s rules
nothing answers without the token."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from raydo.gateway import inspection
from raydo.gateway.inspector import (
    COOKIE,
    STATIC,
    TOKEN_VARIABLE,
    InspectorSettings,
    export,
    serve_settings,
    settings_from_environment,
)
from raydo.gateway.inspector_api import MAX_PAGE, MAX_SQL_CHARS
from raydo.gateway.testing import TestApp, start_app
from tests.cluster import REPO
from tests.polling import poll

API = "/_raydo/inspector/api"
TOKEN = "a-token-for-the-tests-0123456789"


@pytest.fixture
async def served(app_copy: Callable[[str], Path]) -> AsyncIterator[TestApp]:
    """The app with every binding, inspector on as ``raydo dev`` serves it, with two rooms
    written, a file in its bucket and a job through its queue."""
    async with start_app(app_copy("everything"), inspector=InspectorSettings()) as app:
        for text in ("one", "two", "three"):
            assert (await app.http.post("/room/alpha", content=text)).status_code == 200
        assert (await app.http.put("/room/alpha", content="three")).status_code == 200
        assert (await app.http.put("/room/beta", content="hi")).status_code == 200
        for key in ("a.txt", "b.txt", "c.txt"):
            assert (await app.http.put(f"/files?key={key}", content=key)).status_code == 204
        assert (await app.http.post("/jobs", content="job")).status_code == 202
        yield app


async def _get(app: TestApp, route: str, **params: Any) -> Any:
    reply = await app.http.get(API + route, params=params)
    assert reply.status_code == 200, reply.text
    return reply.json()


async def _refused(app: TestApp, route: str, **params: Any) -> str:
    reply = await app.http.get(API + route, params=params)
    assert reply.status_code == 400, reply.text
    message: str = reply.json()["message"]
    return message


async def test_bindings_objects_and_one_objects_insides(served: TestApp) -> None:
    app = served
    bindings = await _get(app, "/bindings")
    assert bindings["app"] == app.config.name
    assert {"name": "ROOM", "class_name": "room:Room", "internal": False} in bindings["objects"]
    assert bindings["buckets"] == ["FILES"] and bindings["queues"] == ["jobs"]
    assert bindings["databases"] == ["DB"] and bindings["kv_namespaces"] == ["CONFIG"]

    listed = await _get(app, "/objects", binding="ROOM")
    names = {o["name"] for o in listed["objects"]}
    assert {"alpha", "beta"} <= names
    # Paged: one at a time, each page after the last id of the one before.
    seen: list[str] = []
    after = None
    while True:
        page = await _get(
            app, "/objects", binding="ROOM", limit=1, **({"after": after} if after else {})
        )
        seen += [o["id"] for o in page["objects"]]
        after = page["next"]
        if after is None:
            break
    assert seen == [o["id"] for o in listed["objects"]]

    alpha = await _get(app, "/object", binding="ROOM", name="alpha")
    assert alpha["name"] == "alpha" and alpha["tables"] == {"notes": 3}
    assert alpha["kv_pairs"] == 2 and alpha["alarm"] is not None
    assert "file" not in alpha  # where the folder is stays off the page
    by_id = await _get(app, "/object", binding="ROOM", id=alpha["id"])
    assert by_id["name"] == "alpha" and by_id["tables"] == {"notes": 3}

    rows = await _get(app, "/object/table", binding="ROOM", name="alpha", table="notes")
    assert rows["columns"] == ["text"] and rows["rows"] == [["one"], ["two"], ["three"]]
    assert rows["total"] == 3
    second = await _get(
        app, "/object/table", binding="ROOM", name="alpha", table="notes", offset=1, limit=1
    )
    assert second["rows"] == [["two"]] and second["total"] == 3

    pairs = await _get(app, "/object/kv", binding="ROOM", name="alpha")
    assert pairs["pairs"] == [{"key": "last", "value": "three"}, {"key": "n", "value": 3}]
    first = await _get(app, "/object/kv", binding="ROOM", name="alpha", limit=1)
    assert first["next"] == "last"
    rest = await _get(app, "/object/kv", binding="ROOM", name="alpha", after="last")
    assert rest["pairs"] == [{"key": "n", "value": 3}] and rest["next"] is None


async def test_open_sockets_show_with_their_tags(served: TestApp) -> None:
    app = served
    async with app.websocket("/room/alpha/ws") as ws:
        await ws.send("ping")
        assert await ws.recv() == "ping"
        shown = await _get(app, "/object", binding="ROOM", name="alpha")
        [sock] = shown["sockets"]
        assert sock["tags"] == ["all"] and sock["here"] is True


async def _sql(app: TestApp, query: str, **target: str) -> httpx.Response:
    body = {"binding": "ROOM", "name": "alpha", **target, "query": query}
    return await app.http.post(API + "/object/sql", json=body)


async def test_the_console_reads_and_refuses_writes(served: TestApp) -> None:
    app = served
    reply = await _sql(app, "SELECT text, length(text) AS n FROM notes ORDER BY text")
    assert reply.status_code == 200, reply.text
    answer = reply.json()
    assert answer["columns"] == ["text", "n"]
    assert answer["rows"] == [["one", 3], ["three", 5], ["two", 3]]
    assert answer["truncated"] is False
    raydo_own = await _sql(app, "SELECT key FROM _raydo_kv ORDER BY key")
    assert raydo_own.json()["rows"] == [["last"], ["n"]]  # readable, as the CLI reads them
    for write in (
        "INSERT INTO notes VALUES ('x')",
        "DELETE FROM notes",
        "DROP TABLE notes",
        "CREATE TABLE t (a)",
    ):
        refused = await _sql(app, write)
        assert refused.status_code == 400, write
        assert "read-only" in refused.json()["message"], refused.text
    own = await _sql(app, "UPDATE _raydo_kv SET value = x'00'")
    assert own.status_code == 400 and "belong to raydo" in own.json()["message"]
    attach = await _sql(app, "ATTACH '/tmp/x.db' AS x")
    assert attach.status_code == 400 and "ATTACH" in attach.json()["message"]
    # Nothing was written.
    rows = await _get(app, "/object/table", binding="ROOM", name="alpha", table="notes")
    assert rows["total"] == 3
    many = await _sql(
        app,
        "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c"
        " LIMIT 100000) SELECT i FROM c",
    )
    assert many.json()["truncated"] is True and len(many.json()["rows"]) == MAX_PAGE
    endless = await _sql(
        app,
        "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c) SELECT count(*) FROM c",
    )
    assert endless.status_code == 400 and "stopped" in endless.json()["message"]


async def test_hostile_parameters_get_400_with_a_message(served: TestApp) -> None:
    app = served
    assert "limit" in await _refused(app, "/objects", binding="ROOM", limit=0)
    assert "limit" in await _refused(app, "/objects", binding="ROOM", limit=MAX_PAGE + 1)
    assert "limit" in await _refused(app, "/objects", binding="ROOM", limit="-1")
    assert "limit" in await _refused(app, "/objects", binding="ROOM", limit="1e9")
    assert "after" in await _refused(app, "/objects", binding="ROOM", after="../../etc")
    assert "binding" in await _refused(app, "/objects")
    assert "no Durable Object binding" in await _refused(app, "/objects", binding="NOPE")
    assert "id" in await _refused(app, "/object", binding="ROOM", id="zz")
    assert "one of them" in await _refused(app, "/object", binding="ROOM")
    assert "one of them" in await _refused(app, "/object", binding="ROOM", id="0" * 64, name="a")
    assert "NUL" in await _refused(app, "/object", binding="ROOM", name="a\0b")
    assert "at most" in await _refused(app, "/object", binding="ROOM", name="x" * 5000)
    assert "no storage" in await _refused(app, "/object", binding="ROOM", name="never-made")
    assert "no table" in await _refused(
        app, "/object/table", binding="ROOM", name="alpha", table='notes"; DROP TABLE notes; --'
    )
    assert "no table" in await _refused(
        app, "/object/table", binding="ROOM", name="alpha", table="_raydo_kv"
    )
    assert "offset" in await _refused(
        app, "/object/table", binding="ROOM", name="alpha", table="notes", offset="x"
    )
    assert "no queue" in await _refused(app, "/queue", queue="nope")
    assert "no blob bucket" in await _refused(app, "/bucket", binding="ROOM")
    long_sql = await _sql(app, "SELECT 1" + " " * MAX_SQL_CHARS)
    assert long_sql.status_code == 400 and "at most" in long_sql.json()["message"]
    for body in (b"not json", b"[1]", b'{"binding": "ROOM", "name": "alpha", "query": 5}'):
        sent = await app.http.post(
            API + "/object/sql", content=body, headers={"content-type": "application/json"}
        )
        assert sent.status_code == 400, body
    form = await app.http.post(API + "/object/sql", data={"query": "SELECT 1"})
    assert form.status_code == 400 and "JSON" in form.json()["message"]
    assert (await app.http.get(API + "/nothing-here")).status_code == 404
    assert (await app.http.get("/_raydo/inspector/static/../app.py")).status_code == 404
    assert (await app.http.get("/_raydo/inspector/static/index.py")).status_code == 404


async def test_queues_buckets_and_the_hosts_numbers(served: TestApp) -> None:
    app = served

    async def queues() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = (await _get(app, "/queues"))["queues"]
        return found

    [jobs] = await poll(queues, lambda found: found[0]["acked"] == 1)
    assert jobs["queue"] == "jobs" and jobs["ready"] == 0 and jobs["dead_lettered"] == 0
    shown = await _get(app, "/queue", queue="jobs")
    assert shown["messages"] == [] and shown["acked"] == 1

    keys = await _get(app, "/bucket", binding="FILES")
    assert [k["key"] for k in keys["keys"]] == ["a.txt", "b.txt", "c.txt"]
    assert keys["keys"][0]["size"] == len("a.txt") and keys["next"] is None
    first = await _get(app, "/bucket", binding="FILES", limit=2)
    assert [k["key"] for k in first["keys"]] == ["a.txt", "b.txt"]
    rest = await _get(app, "/bucket", binding="FILES", cursor=first["next"])
    assert [k["key"] for k in rest["keys"]] == ["c.txt"]
    prefixed = await _get(app, "/bucket", binding="FILES", prefix="b")
    assert [k["key"] for k in prefixed["keys"]] == ["b.txt"]

    numbers = await _get(app, "/metrics")
    rooms = [h for h in numbers["hosts"] if h["binding"] == "ROOM"]
    assert sum(h["events"] for h in rooms) >= 4
    assert all(len(h["buckets"]) == len(numbers["bounds"]) + 1 for h in rooms)
    assert sum(sum(h["buckets"]) for h in rooms) == sum(h["events"] for h in rooms)
    assert all(h["mailbox_depth"] >= 0 for h in rooms)


async def test_the_page_and_its_files_are_served(served: TestApp) -> None:
    page = await served.http.get("/_raydo/inspector")
    assert page.status_code == 200 and "<title>raydo inspector</title>" in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    for name in ("inspector.js", "inspector.css"):
        assert (await served.http.get(f"/_raydo/inspector/static/{name}")).status_code == 200


async def test_a_foreign_host_header_is_refused_without_a_token(served: TestApp) -> None:
    rebound = await served.http.get(API + "/bindings", headers={"host": "evil.example:8787"})
    assert rebound.status_code == 403
    for host in ("localhost:1234", "127.0.0.1", "[::1]:80"):
        ok = await served.http.get(API + "/bindings", headers={"host": host})
        assert ok.status_code == 200, host


ROUTES = [
    "/_raydo/inspector",
    "/_raydo/inspector/",
    "/_raydo/inspector/static/inspector.js",
    f"{API}/bindings",
    f"{API}/objects?binding=ROOM",
    f"{API}/object?binding=ROOM&name=alpha",
    f"{API}/object/table?binding=ROOM&name=alpha&table=notes",
    f"{API}/object/kv?binding=ROOM&name=alpha",
    f"{API}/queues",
    f"{API}/queue?queue=jobs",
    f"{API}/bucket?binding=FILES",
    f"{API}/metrics",
    f"{API}/nothing-here",
]


async def test_under_serve_every_route_needs_the_token(app_copy: Callable[[str], Path]) -> None:
    settings = InspectorSettings(token=TOKEN)
    async with start_app(app_copy("everything"), inspector=settings) as app:
        await app.http.post("/room/alpha", content="one")
        for route in ROUTES:
            bare = await app.http.get(route)
            assert bare.status_code == 401, route
            assert "token" in bare.json()["message"]
            wrong = await app.http.get(route, headers={"authorization": "Bearer " + "x" * 32})
            assert wrong.status_code == 401, route
            cookie = await app.http.get(route, headers={"cookie": f"{COOKIE}=nope"})
            assert cookie.status_code == 401, route
        posted = await app.http.post(
            API + "/object/sql", json={"binding": "ROOM", "name": "alpha", "query": "SELECT 1"}
        )
        assert posted.status_code == 401
        wrong_page = await app.http.get("/_raydo/inspector", params={"token": "x" * 32})
        assert wrong_page.status_code == 401 and COOKIE not in wrong_page.headers.get(
            "set-cookie", ""
        )

        bearer = {"authorization": f"Bearer {TOKEN}"}
        for route in ROUTES[:-1]:
            assert (await app.http.get(route, headers=bearer)).status_code == 200, route
        sql = await app.http.post(
            API + "/object/sql",
            json={"binding": "ROOM", "name": "alpha", "query": "SELECT 1 AS one"},
            headers=bearer,
        )
        assert sql.json()["rows"] == [[1]]

        # ?token= once: a cookie for the inspector's paths, and the page again without it.
        async with httpx.AsyncClient(base_url=app.url) as browser:
            moved = await browser.get("/_raydo/inspector", params={"token": TOKEN})
            assert moved.status_code == 303 and moved.headers["location"] == "/_raydo/inspector"
            set_cookie = moved.headers["set-cookie"].lower()
            assert "httponly" in set_cookie and "samesite=strict" in set_cookie
            assert "path=/_raydo/inspector" in set_cookie
            assert (await browser.get(API + "/bindings")).status_code == 200
            assert (await browser.get("/_raydo/inspector")).status_code == 200


async def test_beyond_loopback_only_when_asked(app_copy: Callable[[str], Path]) -> None:
    async with start_app(app_copy("everything"), inspector=InspectorSettings(token=TOKEN)) as app:
        far = httpx.ASGITransport(app=app.gateway, client=("10.1.2.3", 5000))
        async with httpx.AsyncClient(transport=far, base_url="http://app") as client:
            bearer = {"authorization": f"Bearer {TOKEN}"}
            assert (await client.get(API + "/bindings", headers=bearer)).status_code == 404
        app.gateway.inspector.settings = InspectorSettings(token=TOKEN, public=True)
        async with httpx.AsyncClient(transport=far, base_url="http://app") as client:
            assert (await client.get(API + "/bindings")).status_code == 401
            assert (await client.get(API + "/bindings", headers=bearer)).status_code == 200


async def test_off_unless_asked(app_copy: Callable[[str], Path]) -> None:
    async with start_app(app_copy("everything")) as app:
        for route in ROUTES:
            assert (await app.http.get(route)).status_code == 404, route


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="at least"):
        InspectorSettings(token="short")
    with pytest.raises(ValueError, match="needs a token"):
        InspectorSettings(public=True)


def test_a_built_package_carries_the_page(tmp_path: Path) -> None:
    """setuptools' build_py lays out what a wheel holds: the page's files beside the code."""
    source = tmp_path / "src"
    shutil.copytree(
        REPO,
        source,
        symlinks=True,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "__pycache__", ".raydo", "tests", "bench", "examples"
        ),
    )
    (source / "examples").mkdir()
    built = tmp_path / "lib"
    build = ["-q", "build_py", "--build-lib", str(built)]
    done = subprocess.run(
        [sys.executable, "-c", "import setuptools; setuptools.setup()", *build],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    wanted = {p.name for p in STATIC.iterdir()}
    assert {"index.html", "inspector.js", "inspector.css"} <= wanted
    shipped = {p.name for p in (built / "raydo" / "gateway" / "inspector_static").iterdir()}
    assert wanted <= shipped, sorted(wanted - shipped)


def test_serve_options_become_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    assert serve_settings(False, None, False, {}) == (None, False)
    with pytest.raises(ValueError, match="go with --inspector"):
        serve_settings(False, TOKEN, False, {})
    with pytest.raises(ValueError, match="go with --inspector"):
        serve_settings(False, None, True, {})
    made, shown = serve_settings(True, None, False, {})
    assert made is not None and made.token is not None and len(made.token) >= 16 and shown
    given, shown = serve_settings(True, TOKEN, True, {TOKEN_VARIABLE: "x" * 20})
    assert given == InspectorSettings(token=TOKEN, public=True) and not shown
    from_env, shown = serve_settings(True, None, False, {TOKEN_VARIABLE: "y" * 20})
    assert from_env == InspectorSettings(token="y" * 20) and not shown
    with pytest.raises(ValueError, match="at least"):
        serve_settings(True, "short", False, {})
    # Handed to the workers: on only when serve said so, not because the variable is set.
    monkeypatch.setenv(TOKEN_VARIABLE, TOKEN)
    export(None)
    assert settings_from_environment() is None
    export(InspectorSettings(token=TOKEN, public=True))
    assert settings_from_environment() == InspectorSettings(token=TOKEN, public=True)
    export(None)
    assert settings_from_environment() is None


async def test_a_file_that_is_not_a_database_is_a_500_saying_so(served: TestApp) -> None:
    config = served.config
    path = inspection.object_path(config, inspection.object_id(config, "ROOM", "x", by_name=True))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not a database " * 100)
    reply = await served.http.get(API + "/object", params={"binding": "ROOM", "name": "x"})
    assert reply.status_code == 500 and "not a database" in reply.json()["message"]
