"""The assets folder's ``_redirects`` and ``_headers``: the rules read (and what is left out
with a reason), then applied over real HTTP, before the Worker; the files themselves are
never served."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from raydo.bindings.assets._rules import read_rules
from raydo.gateway.testing import start_app

REDIRECTS = """\
# comments and blank lines are fine

/old-about /about 301
/blog/:year/:slug /posts/:year-:slug
/docs/* /manual/:splat 308
/shop/* https://shop.example.com/:splat 302
/pretty /notes.txt 200
/ghost /nothing-here 200
/about-again /about
not-a-path /x
/bad /x 404
/too many fields here
/old-about /elsewhere
"""

HEADERS = """\
/*
  X-Frame-Options: DENY
  X-Robots-Tag: noindex
/style.css
  ! X-Robots-Tag
  Cache-Control: public, max-age=3600
/blog/:name
  X-Post: :name
  X-Robots-Tag: nofollow
    bad line without colon
"""


def test_rules_are_read_and_bad_lines_left_out_with_a_reason() -> None:
    rules = read_rules(REDIRECTS, HEADERS)
    assert rules.redirect("/old-about") == (301, "/about")
    assert rules.redirect("/blog/2026/hello") == (302, "/posts/2026-hello")
    assert rules.redirect("/docs/a/b") == (308, "/manual/a/b")
    assert rules.redirect("/shop/cart") == (302, "https://shop.example.com/cart")
    assert rules.redirect("/pretty") == (200, "/notes.txt")
    assert rules.redirect("/about-again") == (302, "/about")
    assert rules.redirect("/blog/2026") is None  # :slug is one segment
    assert rules.redirect("/missing") is None
    assert len(rules.problems) == 5, rules.problems
    assert any("_redirects:10" in p and "only path rules" in p for p in rules.problems)
    assert any("_redirects:11" in p and "404" in p for p in rules.problems)
    assert any("_redirects:13" in p and "already has a rule" in p for p in rules.problems)
    assert any("_headers:10" in p for p in rules.problems)
    found = list(rules.headers_for("/blog/first"))
    assert [r.source for r in found] == ["/*", "/blog/:name"]
    assert found[1].set == [("x-post", "first"), ("x-robots-tag", "nofollow")]


def test_rule_limits() -> None:
    many = "\n".join(f"/d{n}/* /x/:splat" for n in range(101))
    rules = read_rules(many, None)
    assert len(rules.dynamic) == 100
    assert rules.problems == ["_redirects:101: over 100 dynamic rules"]


@pytest.fixture
def app_dir(app_copy: Callable[[str], Path]) -> Path:
    folder = app_copy("assets")
    (folder / "public" / "_redirects").write_text(REDIRECTS)
    (folder / "public" / "_headers").write_text(HEADERS)
    return folder


async def test_redirects_and_headers_over_http(app_dir: Path) -> None:
    async with start_app(app_dir) as app:
        moved = await app.http.get("/old-about?x=1")
        assert (moved.status_code, moved.headers["location"]) == (301, "/about?x=1")
        assert moved.headers["x-frame-options"] == "DENY"
        post = await app.http.get("/blog/2026/hello")
        assert (post.status_code, post.headers["location"]) == (302, "/posts/2026-hello")
        away = await app.http.get("/shop/cart")
        assert away.headers["location"] == "https://shop.example.com/cart"
        pretty = await app.http.get("/pretty")  # a rewrite: notes.txt under this URL
        assert (pretty.status_code, pretty.text) == (200, "plain\n")
        assert pretty.headers["content-type"] == "text/plain; charset=utf-8"
        ghost = await app.http.get("/ghost")  # a rewrite to nothing is a 404, not the Worker's
        assert ghost.status_code == 404 and not ghost.text.startswith("worker:")
        css = await app.http.get("/style.css")
        assert css.headers["cache-control"] == "public, max-age=3600"
        assert css.headers["x-frame-options"] == "DENY"
        assert "x-robots-tag" not in css.headers
        page = await app.http.get("/about")
        assert page.headers["x-robots-tag"] == "noindex"
        etag = page.headers["etag"]
        again = await app.http.get("/about", headers={"if-none-match": etag})
        assert (again.status_code, again.headers["x-frame-options"]) == (304, "DENY")
        worker = await app.http.get("/api/thing")  # the Worker's answers are its own
        assert worker.text == "worker: GET /api/thing"
        assert "x-frame-options" not in worker.headers
        for hidden in ("/_redirects", "/_headers"):
            answer = await app.http.get(hidden)
            assert answer.text == f"worker: GET {hidden}"  # not served from the folder
        # An edit is read on the next request.
        (app_dir / "public" / "_redirects").write_text("/old-about /docs/ 307\n")
        moved = await app.http.get("/old-about")
        assert (moved.status_code, moved.headers["location"]) == (307, "/docs/")


async def test_rule_files_are_not_served_through_a_link(app_dir: Path) -> None:
    os.symlink(app_dir / "public" / "_headers", app_dir / "public" / "headers.txt")
    async with start_app(app_dir) as app:
        assert (await app.http.get("/headers.txt")).text == "worker: GET /headers.txt"
        fetched = await app.env.ASSETS.fetch("/_redirects")
        assert fetched.status_code == 404


def test_assetsignore_patterns() -> None:
    from raydo.bindings.assets._rules import read_ignore

    ignore = read_ignore("# build leftovers\n*.map\ndrafts/\n!drafts/keep.html\n/secret.txt\n")
    assert "/app.js.map" in ignore and "/deep/x/app.js.map" in ignore
    assert "/drafts/a.html" in ignore and "/drafts/keep.html" not in ignore
    assert "/secret.txt" in ignore and "/sub/secret.txt" not in ignore
    assert "/index.html" not in ignore and "/drafts.html" not in ignore
    assert "/x" not in read_ignore(None)


async def test_assetsignore_keeps_files_from_being_served(app_dir: Path) -> None:
    public = app_dir / "public"
    (public / "drafts").mkdir()
    (public / "drafts" / "wip.html").write_text("wip")
    (public / "app.js.map").write_text("{}")
    (public / ".assetsignore").write_text("drafts/\n*.map\n")
    async with start_app(app_dir) as app:
        for path in ("/drafts/wip", "/drafts/wip.html", "/app.js.map", "/.assetsignore"):
            assert (await app.http.get(path)).text == f"worker: GET {path}", path
        assert (await app.http.get("/app.js")).status_code == 200
