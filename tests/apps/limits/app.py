"""A Starlette app for the limits tests; they call the objects and the database through env."""

from starlette.applications import Starlette

app = Starlette()
