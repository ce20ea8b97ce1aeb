"""``import wsgi``: the platform's top-level spelling of :mod:`workers.wsgi`."""

from workers.wsgi import entrypoint, fetch

__all__ = ["entrypoint", "fetch"]
