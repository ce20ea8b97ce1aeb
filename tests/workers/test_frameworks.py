"""FastAPI and Flask apps served from Python Workers through ``asgi.fetch`` and
``wsgi.entrypoint``, each configured only by its ``wrangler.jsonc`` (as Cloudflare's package
pages write them), served by raydo and checked over real HTTP."""

from __future__ import annotations

from pathlib import Path

from raydo.gateway.config import load_config
from raydo.gateway.testing import start_app

APPS = Path(__file__).parent / "apps"


def test_the_wrangler_config_names_the_default_worker_class() -> None:
    assert load_config(APPS / "fastapi_worker").main == "worker:Default"
    assert load_config(APPS / "flask_worker").main == "worker:Default"


async def test_a_fastapi_app_behind_asgi_fetch_with_env_in_its_scope() -> None:
    async with start_app(APPS / "fastapi_worker") as app:
        root = await app.http.get("/")
        assert (root.status_code, root.json()) == (200, {"message": "Hello, World!"})
        assert root.headers["content-type"] == "application/json"

        env = await app.http.get("/env")
        assert env.json() == {
            "message": "Here is an example of getting an environment variable: hello from vars"
        }

        item = {"name": "Foo", "price": 42.0}
        created = await app.http.post("/items/", json=item)
        assert created.json() == {**item, "description": None, "tax": None}
        updated = await app.http.put("/items/5?q=x", json=item)
        assert updated.json() == {"item_id": 5, **item, "description": None, "tax": None, "q": "x"}

        invalid = await app.http.post("/items/", json={"name": "no price"})
        assert invalid.status_code == 422
        assert invalid.json()["detail"][0]["loc"] == ["body", "price"]
        assert (await app.http.get("/nope")).status_code == 404

        # A Durable Object reached from the app through the env in its scope.
        assert (await app.http.post("/count/a")).json() == {"value": 1}
        assert (await app.http.post("/count/a")).json() == {"value": 2}
        assert (await app.http.post("/count/b")).json() == {"value": 1}


async def test_a_flask_app_behind_wsgi_entrypoint() -> None:
    async with start_app(APPS / "flask_worker") as app:
        index = await app.http.get("/")
        assert (index.status_code, index.json()) == (200, {"message": "Hello from Flask"})

        echo = await app.http.post("/echo", content="stressed")
        assert (echo.status_code, echo.text) == (201, "desserts")
        assert echo.headers["x-method"] == "POST"

        greet = await app.http.get("/greet/Ada?q=1")
        assert greet.json() == {"greeting": "Hi, Ada!", "q": "1"}

        moved = await app.http.get("/old")
        assert (moved.status_code, moved.headers["location"]) == (302, "/")
        assert (await app.http.get("/nope")).status_code == 404
