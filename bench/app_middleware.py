"""Benchmark baseline: the bare app plus a body-logging @app.middleware("http").

This is the middleware people write first, made to work on Starlette 0.26
(Debian 12): `await request.body()` consumes the ASGI receive channel, so the
middleware re-wraps it (`request._receive`, which `call_next` reads from) to
hand the cached body to the endpoint; see examples/fastapi/middleware_hang.py
for what happens without that. The response body is drained from
`call_next`'s streaming response and re-sent as a plain Response.

Each request becomes one JSON line (method, path, status, both bodies,
duration) written through the `logging` module to $BENCH_APP_LOG
(default ./app_middleware.jsonl).

    BENCH_APP_LOG=/tmp/mw.jsonl /usr/bin/python3 -m uvicorn app_middleware:app --app-dir bench --port 8000
"""

import json
import logging
import os
import time

from fastapi import Request
from fastapi.responses import Response

from app_bare import app

log = logging.getLogger("bench.middleware")
log.propagate = False
log.setLevel(logging.INFO)
_handler = logging.FileHandler(os.environ.get("BENCH_APP_LOG", "app_middleware.jsonl"))
_handler.setFormatter(logging.Formatter("%(message)s"))
log.addHandler(_handler)


@app.middleware("http")
async def log_bodies(request: Request, call_next):
    start = time.perf_counter_ns()
    body = await request.body()
    original_receive = request._receive
    given = False

    async def receive():
        # The cached body once, then the server's own channel (disconnects).
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await original_receive()

    request._receive = receive
    response = await call_next(request)
    resp_body = b"".join([chunk async for chunk in response.body_iterator])
    log.info(json.dumps({
        "method": request.method,
        "path": request.url.path,
        "status": response.status_code,
        "request_body": body.decode("utf-8", "replace"),
        "response_body": resp_body.decode("utf-8", "replace"),
        "duration_ns": time.perf_counter_ns() - start,
    }))
    headers = {k: v for k, v in response.headers.items() if k != "content-length"}
    return Response(content=resp_body, status_code=response.status_code, headers=headers)
