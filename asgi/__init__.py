"""``import asgi``: the platform's top-level spelling of :mod:`workers.asgi`."""

from workers.asgi import entrypoint, fetch

__all__ = ["entrypoint", "fetch"]
