# A Flask app behind a Python Worker, as Cloudflare's Flask page writes it (with type
# annotations, as this repository's tests are typed).
from typing import Any

from flask import Flask, request

from workers import wsgi

app = Flask(__name__)


@app.get("/")
def index() -> dict[str, str]:
    return {"message": "Hello from Flask"}


@app.post("/echo")
def echo() -> tuple[str, int, dict[str, str]]:
    body = request.get_data(as_text=True)
    return body[::-1], 201, {"x-method": request.method, "content-type": "text/plain"}


@app.get("/greet/<name>")
def greet(name: str) -> dict[str, Any]:
    env = request.environ["workers.env"]
    return {"greeting": f"{env.GREETING}, {name}!", "q": request.args.get("q")}


@app.get("/old")
def old() -> Any:
    from flask import redirect

    return redirect("/", code=302)


Default = wsgi.entrypoint(app)
