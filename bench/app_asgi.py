"""Benchmark baseline: the bare app inside a raw-ASGI middleware stack.

The careful way to log bodies without BaseHTTPMiddleware: three pure-ASGI
layers, outermost first,

  BodyCache   reads the whole request body once, keeps it in the scope, and
              replays it to the app through a wrapped receive;
  Timing      adds an `x-response-time` header (ms) to the response start;
  JsonLog     captures status and response body chunks from send and, when
              the app returns, writes one JSON line per request through the
              `logging` module to $BENCH_APP_LOG (default ./app_asgi.jsonl).

    BENCH_APP_LOG=/tmp/asgi.jsonl /usr/bin/python3 -m uvicorn app_asgi:app --app-dir bench --port 8000
"""

import json
import logging
import os
import time

from app_bare import app as fastapi_app

log = logging.getLogger("bench.asgi")
log.propagate = False
log.setLevel(logging.INFO)
_handler = logging.FileHandler(os.environ.get("BENCH_APP_LOG", "app_asgi.jsonl"))
_handler.setFormatter(logging.Formatter("%(message)s"))
log.addHandler(_handler)

BODY_KEY = "bench.body"


class BodyCache:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        chunks = []
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":   # client went away
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        scope[BODY_KEY] = body
        given = False

        async def replay():
            nonlocal given
            if not given:
                given = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class Timing:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()

        async def timed_send(message):
            if message["type"] == "http.response.start":
                ms = (time.perf_counter() - start) * 1000.0
                message["headers"] = list(message.get("headers", [])) + [
                    (b"x-response-time", b"%.3f" % ms)]
            await send(message)

        await self.app(scope, receive, timed_send)


class JsonLog:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter_ns()
        status = None
        chunks = []

        async def logged_send(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, logged_send)
        finally:
            log.info(json.dumps({
                "method": scope["method"],
                "path": scope["path"],
                "status": status,
                "request_body": scope.get(BODY_KEY, b"").decode("utf-8", "replace"),
                "response_body": b"".join(chunks).decode("utf-8", "replace"),
                "duration_ns": time.perf_counter_ns() - start,
            }))


app = BodyCache(Timing(JsonLog(fastapi_app)))
