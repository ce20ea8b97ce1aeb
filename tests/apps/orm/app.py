"""SQLAlchemy over the database binding, for tests."""

from starlette.applications import Starlette

app = Starlette(routes=[])
