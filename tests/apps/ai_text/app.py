"""A text model over HTTP: ``GET /ask?q=`` streams Workers AI's server-sent events."""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

MODEL = "@cf/meta/llama-3.1-8b-instruct"


async def ask(request: Request) -> Response:
    inputs = {"prompt": request.query_params["q"], "stream": True}
    stream = await request.state.env.AI.run(MODEL, inputs)
    return StreamingResponse(stream, media_type="text/event-stream")


app = Starlette(routes=[Route("/ask", ask)])
