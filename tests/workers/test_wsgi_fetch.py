"""``wsgi.fetch(app, request, env)`` called from a Worker's own ``fetch``, as the platform's
docs write it (the Flask test serves ``wsgi.entrypoint``): a plain PEP 3333 app gets the
method, path, query, headers, body and ``environ["workers.env"]``; its answer comes back as
a :class:`workers.Response`."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pytest

import wsgi
from workers import Request

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    seen = (
        f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']}?{environ['QUERY_STRING']}"
        f" {environ.get('HTTP_X_TEST')} {environ.get('CONTENT_TYPE')}"
        f" {environ['workers.env']['GREETING']} {body.decode()}"
    )
    start_response("202 Accepted", [("content-type", "text/x"), ("set-cookie", "a=1")])
    return [seen.encode(), b"!"]


async def test_wsgi_fetch_runs_a_wsgi_app_with_env_in_its_environ() -> None:
    request = Request(
        "https://example.com/p%20q?x=1",
        method="POST",
        headers={"x-test": "yes"},
        body="hi",
    )
    response = await wsgi.fetch(app, request, {"GREETING": "hello"})
    assert (response.status, response.statusText) == (202, "Accepted")
    assert response.headers["content-type"] == "text/x"
    assert await response.text() == "POST /p q?x=1 yes text/plain;charset=UTF-8 hello hi!"


async def test_wsgi_fetch_refuses_a_relative_url() -> None:
    with pytest.raises(ValueError, match="not absolute"):
        await wsgi.fetch(app, Request("/relative"), {})


async def test_wsgi_fetch_serves_a_django_app() -> None:
    """A Django project's WSGI application, as the platform's docs serve one through wsgi."""
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            DEBUG=False,
            SECRET_KEY="tests-only-" + "x" * 40,
            ALLOWED_HOSTS=["example.com"],
            ROOT_URLCONF=__name__,
            MIDDLEWARE=["django.middleware.common.CommonMiddleware"],
            INSTALLED_APPS=[],
        )
        django.setup()
    from django.core.wsgi import get_wsgi_application

    response = await wsgi.fetch(
        get_wsgi_application(),
        Request("https://example.com/hello/ada?loud=1", method="GET"),
        {"GREETING": "Hi"},
    )
    assert response.status == 200, await response.text()
    assert response.headers["content-type"].startswith("application/json")
    assert await response.json() == {"greeting": "Hi", "name": "ADA"}
    refused = await wsgi.fetch(
        get_wsgi_application(), Request("https://evil.example/hello/x"), {"GREETING": "Hi"}
    )
    assert refused.status == 400  # Django's own ALLOWED_HOSTS check saw the request's host


def _hello(request: Any, name: str) -> Any:
    from django.http import JsonResponse

    env = request.META["workers.env"]
    shown = name.upper() if request.GET.get("loud") else name
    return JsonResponse({"greeting": env["GREETING"], "name": shown})


def _urlpatterns() -> list[Any]:
    from django.urls import path

    return [path("hello/<str:name>", _hello)]


def __getattr__(attribute: str) -> Any:
    # Django imports ROOT_URLCONF (this module) and reads its urlpatterns lazily.
    if attribute == "urlpatterns":
        return _urlpatterns()
    raise AttributeError(attribute)
