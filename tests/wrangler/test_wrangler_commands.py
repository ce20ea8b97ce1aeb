"""wrangler's commands (``raydo d1 execute``, ``d1 migrations``, ``kv key``, ``r2 object``)
on an app configured only by its wrangler.jsonc: each through the app's binding, with
wrangler's names for what they act on (a binding or a database_name, a bucket_name), and
clear errors."""

from __future__ import annotations

import asyncio
import io
import json
import sys
from pathlib import Path

import pytest

from raydo.bindings.d1 import D1Error
from raydo.gateway.cli import main as cli
from raydo.gateway.cli_wrangler import split_statements
from raydo.gateway.testing import CONFIGURED_STORAGE, start_app

ENTRY = """\
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route


async def users(request):
    found = await request.state.env.DB.prepare("SELECT name FROM users ORDER BY id").all()
    return JSONResponse([row["name"] for row in found.results])


app = Starlette(routes=[Route("/users", users)])
"""

CONFIG = """\
{
  "name": "%s",
  "main": "src/entry.py",
  "d1_databases": [
    { "binding": "DB", "database_name": "app-db", "database_id": "x",
      "migrations_dir": "migrations" },
  ],
  "kv_namespaces": [{ "binding": "CACHE", "id": "0123456789abcdef0123456789abcdef" }],
  "r2_buckets": [{ "binding": "FILES", "bucket_name": "app-files" }],
}
"""


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "w"
    (folder / "src").mkdir(parents=True)
    (folder / "migrations").mkdir()
    (folder / "src" / "entry.py").write_text(ENTRY)
    (folder / "wrangler.jsonc").write_text(CONFIG % f"cmds-{tmp_path.name[-12:]}")
    (folder / "migrations" / "0001_users.sql").write_text(
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);\n"
    )
    return folder


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_statements_split_where_sqlite_says(tmp_path: Path) -> None:
    sql = """
    -- a comment; with a semicolon
    INSERT INTO t VALUES ('a;b');
    CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE t SET x = 1; END;
    SELECT 1
    ;;
    """
    assert split_statements(sql) == [
        "-- a comment; with a semicolon\n    INSERT INTO t VALUES ('a;b');",
        "CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE t SET x = 1; END;",
        "SELECT 1\n    ;",
    ]
    assert split_statements("  ;  \n") == []
    assert split_statements("SELECT 1; -- the end") == ["SELECT 1;"]
    with pytest.raises(D1Error, match="ends inside a statement"):
        split_statements("SELECT 'unclosed;")


async def test_d1_migrations_and_execute_reach_the_app(
    app_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def commands() -> None:
        d = ["--dir", str(app_dir), "--local"]
        assert (
            run(capsys, "d1", "migrations", "list", "app-db", *d)[1] == "0001_users.sql\tpending\n"
        )
        assert run(capsys, "d1", "migrations", "apply", "DB", *d)[0] == 0
        assert "applied" in run(capsys, "db", "migrations", "list", "DB", "--dir", str(app_dir))[1]
        two = "INSERT INTO users (name) VALUES ('ada'); INSERT INTO users (name) VALUES ('bo;b')"
        code, out, _ = run(capsys, "d1", "execute", "app-db", *d, "--command", two)
        assert code == 0 and out.count("1 changed") == 2
        (app_dir / "more.sql").write_text("INSERT INTO users (name) VALUES ('cy');\n")
        assert run(capsys, "d1", "execute", "DB", *d, "--file", str(app_dir / "more.sql"))[0] == 0
        code, out, _ = run(
            capsys, "d1", "execute", "DB", *d, "--json", "--command", "SELECT name FROM users"
        )
        (result,) = json.loads(out)
        assert result["success"] is True
        assert result["results"] == [{"name": "ada"}, {"name": "bo;b"}, {"name": "cy"}]
        assert result["meta"]["rows_read"] == 3
        one = "SELECT id, name FROM users WHERE id = 1"
        code, out, _ = run(capsys, "d1", "execute", "DB", *d, "--command", one)
        assert out == "id\tname\n1\tada\n"

    await asyncio.to_thread(commands)
    async with start_app(app_dir, storage=CONFIGURED_STORAGE) as app:  # the app sees them
        assert (await app.http.get("/users")).json() == ["ada", "bo;b", "cy"]


def test_d1_execute_is_all_or_nothing_and_errors_say_why(
    app_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = ["--dir", str(app_dir)]
    assert run(capsys, "d1", "migrations", "apply", "DB", *d)[0] == 0
    bad = "INSERT INTO users (name) VALUES ('x'); INSERT INTO users (nope) VALUES (1)"
    code, _, err = run(capsys, "d1", "execute", "DB", *d, "--command", bad)
    assert code == 2 and "nope" in err
    count = "SELECT count(*) AS n FROM users"
    code, out, _ = run(capsys, "d1", "execute", "DB", *d, "--command", count)
    assert out == "n\n0\n"  # the first insert was rolled back with the second
    code, _, err = run(capsys, "d1", "execute", "OTHER", *d, "--command", "SELECT 1")
    assert code == 2 and "no [[d1_databases]] database 'OTHER' (known: DB)" in err
    code, _, err = run(capsys, "d1", "execute", "DB", *d, "--file", str(app_dir / "missing.sql"))
    assert code == 2 and "missing.sql" in err
    with pytest.raises(SystemExit):  # --command and --file are one or the other
        cli(["d1", "execute", "DB", *d, "--command", "SELECT 1", "--file", "x.sql"])


def test_kv_key_put_get_list_delete(app_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    b = ["--binding", "CACHE", "--dir", str(app_dir), "--local"]
    assert run(capsys, "kv", "key", "put", "greeting", "hello", *b)[0] == 0
    (app_dir / "blob.bin").write_bytes(b"\x00\xffbytes")
    assert run(capsys, "kv", "key", "put", "raw", *b, "--path", str(app_dir / "blob.bin"))[0] == 0
    later = ["later", "x", *b, "--ttl", "3600", "--metadata", '{"v": 2}']
    code, _, _ = run(capsys, "kv", "key", "put", *later)
    assert code == 0
    assert run(capsys, "kv", "key", "get", "greeting", *b) == (0, "hello", "")
    by_id = ["--namespace-id", "0123456789abcdef0123456789abcdef", "--dir", str(app_dir)]
    assert run(capsys, "kv", "key", "get", "greeting", *by_id)[1] == "hello"
    code, out, _ = run(capsys, "kv", "key", "list", *b)
    listed = json.loads(out)
    assert [k["name"] for k in listed] == ["greeting", "later", "raw"]
    assert listed[1]["metadata"] == {"v": 2} and listed[1]["expiration"] > 0
    assert json.loads(run(capsys, "kv", "key", "list", *b, "--prefix", "gr")[1]) == [
        {"name": "greeting"}
    ]
    assert run(capsys, "kv", "key", "delete", "greeting", *b)[0] == 0
    code, _, err = run(capsys, "kv", "key", "get", "greeting", *b)
    assert code == 1 and "no value for key 'greeting'" in err
    code, _, err = run(capsys, "kv", "key", "put", "k", "v", *b, "--ttl", "5")
    assert code == 2 and "60" in err  # below the namespace's min_ttl
    code, _, err = run(capsys, "kv", "key", "put", "k", *b)
    assert code == 2 and "--path" in err
    code, _, err = run(capsys, "kv", "key", "get", "k", "--binding", "NOPE", "--dir", str(app_dir))
    assert code == 2 and "no [[kv_namespaces]] binding 'NOPE'" in err


def test_r2_object_put_get_delete(
    app_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    d = ["--dir", str(app_dir), "--local"]
    source = app_dir / "photo.jpg"
    source.write_bytes(bytes(range(256)) * 5000)  # over one read chunk
    put = ["app-files/img/photo.jpg", *d, "--file", str(source), "--content-type", "image/jpeg"]
    code, out, _ = run(capsys, "r2", "object", "put", *put)
    assert code == 0 and "1280000 bytes" in out
    copy = app_dir / "copy.jpg"
    assert (
        run(capsys, "r2", "object", "get", "FILES/img/photo.jpg", *d, "--file", str(copy))[0] == 0
    )
    assert copy.read_bytes() == source.read_bytes()
    monkeypatch.chdir(app_dir / "src")
    assert run(capsys, "r2", "object", "get", "app-files/img/photo.jpg", *d)[0] == 0
    assert (app_dir / "src" / "photo.jpg").read_bytes() == source.read_bytes()  # named after it
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"from stdin")))
    assert run(capsys, "r2", "object", "put", "app-files/note.txt", *d, "--pipe")[0] == 0
    assert run(capsys, "r2", "object", "delete", "app-files/img/photo.jpg", *d)[0] == 0
    code, _, err = run(capsys, "r2", "object", "get", "app-files/img/photo.jpg", *d, "--pipe")
    assert code == 1 and "no object 'img/photo.jpg'" in err
    code, _, err = run(capsys, "r2", "object", "delete", "app-files", *d)
    assert code == 2 and "expected BUCKET/KEY" in err
    code, _, err = run(capsys, "r2", "object", "delete", "other/x", *d)
    assert code == 2 and "no [[r2_buckets]] bucket 'other' (known: app-files)" in err


async def test_a_running_app_holds_the_folder(
    app_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with start_app(app_dir, storage=CONFIGURED_STORAGE):
        code, _, err = await asyncio.to_thread(
            run, capsys, "kv", "key", "get", "k", "--binding", "CACHE", "--dir", str(app_dir)
        )
    assert code == 2 and "in use" in err.lower()
