"""The crons test app: ``scheduled`` records every run in the ``Log`` object."""

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def scheduled(controller: Any, env: Any) -> None:
    if controller.cron == "30 4 * * 1-5" and await env.LOG.get_by_name("log").failing():
        raise RuntimeError("asked to fail")
    await env.LOG.get_by_name("log").record(controller.cron, controller.scheduled_time)


async def runs(request: Request) -> JSONResponse:
    return JSONResponse(await request.state.env.LOG.get_by_name("log").runs())


app = Starlette(routes=[Route("/runs", runs)])
