"""Static assets (``[assets]``): which file a path names under each html_handling and
not_found_handling (the rules alone), then the test app over real HTTP: content types,
ETag and 304, redirects, the Worker behind the folder, ``env.ASSETS.fetch``, and paths that
try to leave the folder (``..``, encoded, double-encoded, symlinks)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from raydo.bindings.assets import Redirect, Serve, content_type, decode_path, resolve
from raydo.gateway.config import ConfigError, load_config
from raydo.gateway.testing import TestApp, start_app

FILES = {
    "/index.html",
    "/about.html",
    "/docs/index.html",
    "/blog/post.html",
    "/blog/404.html",
    "/404.html",
    "/LICENSE",
    "/both.html",
    "/both/index.html",
}


def intent(path: str, html: str = "auto-trailing-slash", not_found: str = "none") -> object:
    return resolve(path, html, not_found, FILES.__contains__)


# --- the rules -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/", Serve("/index.html")),
        ("/index.html", Redirect("/")),
        ("/index", Redirect("/")),
        ("/about", Serve("/about.html")),
        ("/about.html", Redirect("/about")),
        ("/about/", Redirect("/about")),
        ("/docs/", Serve("/docs/index.html")),
        ("/docs", Redirect("/docs/")),
        ("/docs/index.html", Redirect("/docs/")),
        ("/docs/index", Redirect("/docs/")),
        ("/docs.html", Redirect("/docs/")),
        ("/LICENSE", Serve("/LICENSE")),
        ("/both", Serve("/both.html")),
        ("/both/", Serve("/both/index.html")),
        ("/missing", None),
        ("/missing/", None),
    ],
)
def test_auto_trailing_slash(path: str, expected: object) -> None:
    assert intent(path) == expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/", Serve("/index.html")),
        ("/about", Redirect("/about/")),
        ("/about/", Serve("/about.html")),
        ("/about.html", Redirect("/about/")),
        ("/docs", Redirect("/docs/")),
        ("/docs/", Serve("/docs/index.html")),
        ("/docs/index.html", Redirect("/docs/")),
        ("/LICENSE", Serve("/LICENSE")),
    ],
)
def test_force_trailing_slash(path: str, expected: object) -> None:
    assert intent(path, "force-trailing-slash") == expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/", Serve("/index.html")),
        ("/index.html", Redirect("/")),
        ("/about", Serve("/about.html")),
        ("/about/", Redirect("/about")),
        ("/about.html", Redirect("/about")),
        ("/docs", Serve("/docs/index.html")),
        ("/docs/", Redirect("/docs")),
        ("/docs/index.html", Redirect("/docs")),
    ],
)
def test_drop_trailing_slash(path: str, expected: object) -> None:
    assert intent(path, "drop-trailing-slash") == expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/about.html", Serve("/about.html")),
        ("/about", None),
        ("/", None),
        ("/docs/", None),
        ("/docs/index.html", Serve("/docs/index.html")),
    ],
)
def test_no_html_handling_serves_exact_paths_only(path: str, expected: object) -> None:
    assert intent(path, "none") == expected


def test_not_found_handling() -> None:
    assert intent("/app/route/42", not_found="single-page-application") == Serve("/index.html")
    assert intent("/blog/nope/deeper", not_found="404-page") == Serve("/blog/404.html", 404)
    assert intent("/elsewhere/x", not_found="404-page") == Serve("/404.html", 404)
    assert intent("/about", not_found="single-page-application") == Serve("/about.html")


def test_unknown_modes_are_refused() -> None:
    with pytest.raises(ValueError, match="html_handling"):
        intent("/", html="auto")
    with pytest.raises(ValueError, match="not_found_handling"):
        intent("/", not_found="spa")


@pytest.mark.parametrize(
    ("raw", "decoded"),
    [
        ("/a%20b.txt", "/a b.txt"),
        ("//a///b", "/a/b"),
        ("/%252e%252e/x", "/%2e%2e/x"),  # decoded once: a file literally named %2e%2e
        ("/caf%C3%A9", "/café"),
        ("/..", None),
        ("/a/../b", None),
        ("/a/./b", None),
        ("/%2e%2e/secret", None),
        ("/%2E%2e/secret", None),
        ("/a%2f..%2fb", None),
        ("/a%5c..%5cb", None),
        ("/a%00b", None),
        ("/%ff", None),
        ("relative", None),
    ],
)
def test_paths_decode_once_and_never_climb(raw: str, decoded: str | None) -> None:
    assert decode_path(raw) == decoded


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("/index.html", "text/html; charset=utf-8"),
        ("/style.css", "text/css; charset=utf-8"),
        ("/app.js", "application/javascript"),
        ("/data.json", "application/json"),
        ("/notes.txt", "text/plain; charset=utf-8"),
        ("/logo.png", "image/png"),
        ("/logo.SVG", "image/svg+xml"),
        ("/font.woff2", "font/woff2"),
        ("/mod.wasm", "application/wasm"),
        ("/LICENSE", "application/octet-stream"),
        ("/dir.d/file", "application/octet-stream"),
        ("/x.unknownext", "application/octet-stream"),
    ],
)
def test_content_types(name: str, expected: str) -> None:
    assert content_type(name) == expected


# --- config --------------------------------------------------------------------------------


def with_assets(folder: Path, table: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "public").mkdir(exist_ok=True)
    (folder / "app.py").write_text("app = None\n")
    (folder / "raydo.toml").write_text(f'name = "a"\nmain = "app:app"\n[assets]\n{table}\n')
    return folder


def test_assets_load_with_defaults(tmp_path: Path) -> None:
    config = load_config(with_assets(tmp_path / "a", 'directory = "public"'))
    assert config.assets == {
        "directory": str((tmp_path / "a" / "public").resolve()),
        "binding": None,
        "run_worker_first": False,
        "html_handling": "auto-trailing-slash",
        "not_found_handling": "none",
    }


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ("", "assets.directory"),
        ('directory = "nowhere"', "assets.directory"),
        ('directory = "public"\nhtml_handling = "auto"', "assets.html_handling"),
        ('directory = "public"\nnot_found_handling = "spa"', "assets.not_found_handling"),
        ('directory = "public"\nrun_worker_first = "yes"', "assets.run_worker_first"),
        ('directory = "public"\nbinding = "assets"', "assets.binding"),
        ('directory = "public"\nserve = true', "assets.serve"),
    ],
)
def test_bad_assets_are_config_errors(tmp_path: Path, table: str, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(with_assets(tmp_path / "a", table))
    assert info.value.key == key


def test_the_binding_name_is_unique(tmp_path: Path) -> None:
    folder = with_assets(tmp_path / "a", 'directory = "public"\nbinding = "X"')
    config = folder / "raydo.toml"
    config.write_text(config.read_text() + '[vars]\nX = "1"\n')
    with pytest.raises(ConfigError, match="already used"):
        load_config(folder)


# --- served --------------------------------------------------------------------------------


@pytest.fixture
def app_dir(app_copy: Callable[[str], Path]) -> Path:
    return app_copy("assets")


async def test_files_come_with_their_type_etag_and_cache_control(app: TestApp) -> None:
    for path, body, kind in [
        ("/", b"<h1>home</h1>\n", "text/html; charset=utf-8"),
        ("/style.css", b"body { color: red }\n", "text/css; charset=utf-8"),
        ("/app.js", b"console.log(1)\n", "application/javascript"),
        ("/data.json", b'{"a": 1}\n', "application/json"),
        ("/logo.png", b"\x89PNG\r\n\x1a\n", "image/png"),
        ("/with%20space.txt", b"a file with a space\n", "text/plain; charset=utf-8"),
    ]:
        answer = await app.http.get(path)
        assert (answer.status_code, answer.content) == (200, body), path
        assert answer.headers["content-type"] == kind
        assert answer.headers["cache-control"] == "public, max-age=0, must-revalidate"
        assert answer.headers["etag"].startswith('"') and len(answer.headers["etag"]) == 34
        assert answer.headers["content-length"] == str(len(body))


async def test_if_none_match_is_a_304_and_a_change_a_new_etag(app: TestApp, app_dir: Path) -> None:
    first = await app.http.get("/notes.txt")
    etag = first.headers["etag"]
    again = await app.http.get("/notes.txt", headers={"if-none-match": etag})
    assert (again.status_code, again.content, again.headers["etag"]) == (304, b"", etag)
    weak = await app.http.get("/notes.txt", headers={"if-none-match": f'"x", W/{etag}'})
    assert weak.status_code == 304
    (app_dir / "public" / "notes.txt").write_text("changed, and longer\n")
    changed = await app.http.get("/notes.txt", headers={"if-none-match": etag})
    assert (changed.status_code, changed.text) == (200, "changed, and longer\n")
    assert changed.headers["etag"] != etag


async def test_head_has_the_headers_and_no_body(app: TestApp) -> None:
    answer = await app.http.head("/about")
    assert answer.status_code == 200
    assert answer.content == b""
    assert answer.headers["content-length"] == str(len("<h1>about</h1>\n"))


async def test_html_handling_redirects_keep_the_query(app: TestApp) -> None:
    answer = await app.http.get("/about.html?x=1")
    assert (answer.status_code, answer.headers["location"]) == (307, "/about?x=1")
    answer = await app.http.get("/docs")
    assert (answer.status_code, answer.headers["location"]) == (307, "/docs/")
    assert (await app.http.get("/docs/")).text == "<h1>docs</h1>\n"


async def test_what_no_asset_matches_reaches_the_worker(app: TestApp) -> None:
    answer = await app.http.get("/api/hello")
    assert answer.text == "worker: GET /api/hello"
    # A write to an asset's path is refused, as on the platform; elsewhere it is the Worker's.
    assert (await app.http.post("/style.css")).status_code == 405
    assert (await app.http.post("/api/items")).text == "worker: POST /api/items"


async def test_env_assets_fetch(app: TestApp) -> None:
    answer = await app.http.get("/_binding", params={"path": "/about"})
    assert (answer.status_code, answer.text) == (200, "<h1>about</h1>\n")
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    missing = await app.http.get("/_binding", params={"path": "/nothing"})
    assert missing.status_code == 404
    # Outside any request: a URL, a path.
    direct = await app.env.ASSETS.fetch("/data.json")
    assert (direct.status_code, direct.body) == (200, b'{"a": 1}\n')


async def test_run_worker_first_and_the_not_found_pages(app_dir: Path) -> None:
    config = app_dir / "raydo.toml"
    base = config.read_text()
    config.write_text(base + "run_worker_first = true\n")
    async with start_app(app_dir) as app:
        assert (await app.http.get("/about")).text == "worker: GET /about"
        assert (await app.http.get("/_binding", params={"path": "/about"})).status_code == 200
    config.write_text(base + 'not_found_handling = "single-page-application"\n')
    async with start_app(app_dir) as app:
        navigate = {"sec-fetch-mode": "navigate"}
        page = await app.http.get("/app/route/7", headers=navigate)
        assert (page.status_code, page.text) == (200, "<h1>home</h1>\n")
        # Not a browser's navigation (a fetch from the page): the Worker's.
        assert (await app.http.get("/app/route/7")).text == "worker: GET /app/route/7"
        assert (await app.http.get("/_binding", params={"path": "/x/y"})).status_code == 200
    config.write_text(base + 'not_found_handling = "404-page"\n')
    async with start_app(app_dir) as app:
        page = await app.http.get("/blog/gone", headers={"sec-fetch-mode": "navigate"})
        assert (page.status_code, page.text) == (404, "blog not found\n")
        page = await app.http.get("/_binding", params={"path": "/elsewhere"})
        assert (page.status_code, page.text) == (404, "not found here\n")


@pytest.mark.parametrize(
    "path",
    [
        "/../raydo.toml",
        "/%2e%2e/raydo.toml",
        "/%2E%2E/raydo.toml",
        "/docs/%2e%2e/%2e%2e/raydo.toml",
        "/%252e%252e/raydo.toml",
        "/..%2fraydo.toml",
        "/..%5craydo.toml",
        "/docs/..%2f..%2fraydo.toml",
        "/%00/raydo.toml",
        "/outside.txt",
        "/linked/raydo.toml",
        "/inside-link.txt",
    ],
)
async def test_no_path_leaves_the_folder(app_dir: Path, path: str) -> None:
    public = app_dir / "public"
    (app_dir / "outside-secret.txt").write_text("secret")
    os.symlink(app_dir / "outside-secret.txt", public / "outside.txt")
    os.symlink(app_dir, public / "linked")
    os.symlink(public / "notes.txt", public / "inside-link.txt")  # stays inside: served
    async with start_app(app_dir) as app:
        raw = app.url + path  # sent as written: httpx would otherwise tidy the dots
        request = app.http.build_request("GET", raw)
        request.url = request.url.copy_with(raw_path=path.encode())
        answer = await app.http.send(request)
        if path == "/inside-link.txt":
            assert (answer.status_code, answer.text) == (200, "plain\n")
            return
        assert "secret" not in answer.text
        assert "name =" not in answer.text
        assert answer.text.startswith("worker:") or answer.status_code in (400, 404)
        via_binding = await app.env.ASSETS.fetch("http://x" + path)
        assert via_binding.status_code == 404


async def test_run_worker_first_routes(app_dir: Path) -> None:
    public = app_dir / "public"
    (public / "api" / "docs").mkdir(parents=True)
    (public / "api" / "status.json").write_text('{"from": "file"}')
    (public / "api" / "docs" / "index.html").write_text("api docs")
    config = app_dir / "raydo.toml"
    config.write_text(config.read_text() + 'run_worker_first = ["/api/*", "!/api/docs/*"]\n')
    async with start_app(app_dir) as app:
        assert (await app.http.get("/api/status.json")).text == "worker: GET /api/status.json"
        assert (await app.http.get("/api/docs/")).text == "api docs"  # excepted
        assert (await app.http.get("/about")).text == "<h1>about</h1>\n"  # not a route


@pytest.mark.parametrize(
    "value",
    ["[]", '["api/*"]', "[1]", '["!api"]', '"/api/*"', "1", "[" + ", ".join(['"/a"'] * 101) + "]"],
)
def test_bad_worker_first_routes_are_config_errors(tmp_path: Path, value: str) -> None:
    folder = with_assets(tmp_path / "a", f'directory = "public"\nrun_worker_first = {value}')
    with pytest.raises(ConfigError) as info:
        load_config(folder)
    assert info.value.key == "assets.run_worker_first"
    assert "route patterns" in str(info.value)


async def test_large_files_are_read_in_a_thread_or_streamed_whole(app_dir: Path) -> None:
    sizes = {"medium.bin": 100 * 1024, "large.bin": 3 * (1 << 20) // 2}  # 100 KiB, 1.5 MiB
    for name, size in sizes.items():
        (app_dir / "public" / name).write_bytes(os.urandom(size))
    async with start_app(app_dir) as app:
        for name, size in sizes.items():
            body = (app_dir / "public" / name).read_bytes()
            answer = await app.http.get(f"/{name}")
            assert (answer.status_code, answer.content) == (200, body)
            assert answer.headers["content-length"] == str(size)
            etag = answer.headers["etag"]
            again = await app.http.get(f"/{name}", headers={"if-none-match": etag})
            assert again.status_code == 304
            head = await app.http.head(f"/{name}")
            assert (head.headers["content-length"], head.content) == (str(size), b"")
