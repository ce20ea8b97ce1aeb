"""The names of the platform's Python SDK (and Pyodide's ``js``) that raydo does not offer,
each with what to use instead. ``from workers import X`` and ``workers.X`` of one raise
:class:`Unsupported`, an ``ImportError`` carrying that advice (an ``AttributeError`` would
lose its message in ``from ... import``). Private and dunder names raise a plain
``AttributeError``, so probes such as ``hasattr(workers, "__wrapped__")`` keep working."""

from __future__ import annotations

_ADVICE = {
    "WorkflowEntrypoint": "Workflows are not supported; a Durable Object with an alarm can"
    " run durable multi-step work",
    "import_from_javascript": "there is no JavaScript runtime: use Python packages"
    " (outgoing HTTP: workers.fetch; sockets: asyncio)",
    "patch_env": "construct the env in tests with raydo.gateway.testing.start_app",
    "python_to_rpc": "RPC values are encoded for you (msgpack: str, bytes, int, float, bool,"
    " None, list, dict, datetime)",
    "python_from_rpc": "RPC values are decoded for you",
    "handler": "write a WorkerEntrypoint subclass (class Default(WorkerEntrypoint))",
    "env": "use self.env inside a WorkerEntrypoint or DurableObject",
    "wait_until": "use self.ctx.waitUntil(awaitable)",
    "waitUntil": "use self.ctx.waitUntil(awaitable)",
    "HTMLRewriter": "HTMLRewriter is not supported: parse HTML with a Python package",
    "FetchResponse": "workers.fetch returns a workers.Response",
    "RequestInitCfProperties": "cf options are accepted by workers.fetch and ignored",
    "fetch": "use workers.fetch (from workers import fetch)",
    "Object": "there are no JavaScript objects: use dict",
    "console": "use logging or print",
    "Date": "use datetime",
    "JSON": "use the json module",
    "crypto": "use the secrets and hashlib modules",
    "setTimeout": "use asyncio.sleep or an object's alarm",
    "ReadableStream": "bodies are bytes here; an object's StreamingResponse streams",
    "caches": "the Cache API is not supported",
    "EmailMessage": "email handlers are not supported",
}


class Unsupported(ImportError):
    """A name raydo's ``workers`` (or ``js``) module does not have, and what to use instead."""


def unsupported(module: str, name: str) -> Exception:
    if name.startswith("_"):
        return AttributeError(f"module {module!r} has no attribute {name!r}", name=name)
    advice = _ADVICE.get(name)
    if advice is None and module == "js":
        advice = (
            "raydo runs Python Workers on CPython, without Pyodide: of the js module only"
            " WebSocketPair, WebSocketRequestResponsePair and Response are offered; use the"
            " workers module (Request, Response, fetch, FormData, Blob) and Python packages"
        )
    elif advice is None:
        advice = "see the README's 'Coming from Cloudflare Workers' for what is supported"
    return Unsupported(f"{module}.{name} is not supported by raydo: {advice}", name=name)
