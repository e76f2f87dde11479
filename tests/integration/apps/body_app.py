"""A small Starlette app for the integration tests (run it with uvicorn).

    POST /sha256    {"sha256": hex digest, "size": n} of the raw body received
    POST /echo      the request body back, same content type
    GET  /stream    ?n=N: N lines "part i", sent as a chunked (streamed) response
"""

import hashlib

from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route


async def sha256(request):
    digest = hashlib.sha256()
    size = 0
    async for chunk in request.stream():
        digest.update(chunk)
        size += len(chunk)
    return JSONResponse({"sha256": digest.hexdigest(), "size": size})


async def echo(request):
    body = await request.body()
    media = request.headers.get("content-type", "application/octet-stream")
    return Response(body, media_type=media)


async def stream(request):
    n = int(request.query_params.get("n", "3"))

    async def parts():
        for i in range(n):
            yield f"part {i}\n".encode()

    return StreamingResponse(parts(), media_type="text/plain")


app = Starlette(routes=[
    Route("/sha256", sha256, methods=["POST"]),
    Route("/echo", echo, methods=["POST"]),
    Route("/stream", stream, methods=["GET"]),
])
