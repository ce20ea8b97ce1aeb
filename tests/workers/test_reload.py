"""``raydo dev``'s hot reload with a Worker as ``main``: an edit of the Worker is served by
the new ``Default`` class (the gateway asks it for its app again), and its Durable Objects
keep their data."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.cluster import Server, copy_app, dev
from tests.gateway.test_reload import wait_for_output

APP = Path(__file__).parent / "apps" / "hello"


def test_an_edit_of_the_worker_is_served_and_objects_keep_their_data(tmp_path: Path) -> None:
    app = copy_app(APP, tmp_path)
    server: Server = dev(app, tmp_path, args=["--in-process"]).start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            assert client.get("/").text == "Hello World!"
            assert client.get("/counter/a").json() == {"value": 1}
            worker = app / "worker.py"
            worker.write_text(worker.read_text().replace('"Hello World!"', '"Hello again!"'))
            output = wait_for_output(server, "raydo: reloaded")
            assert "worker.py changed" in output
            assert client.get("/").text == "Hello again!"
            assert client.get("/counter/a").json() == {"value": 2}
    finally:
        server.stop()
