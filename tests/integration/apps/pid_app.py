"""Which worker answered: a WSGI app (gunicorn) and an ASGI app (uvicorn).

    gunicorn pid_app:wsgi        uvicorn pid_app:asgi

Every request is answered 200 with one line, "<query> pid=<pid>\\n", so a
test can tell which worker process served each request. ?sleep=SECONDS
holds the worker that long first (at most 1 s), to spread concurrent
requests over the workers: a blocking sleep, in the ASGI app too, so that
a busy uvicorn worker cannot accept meanwhile and the other one does.
"""

import os
import time
from urllib.parse import parse_qs


def _answer(query):
    delay = min(float(parse_qs(query).get("sleep", ["0"])[0]), 1.0)
    body = f"{query} pid={os.getpid()}\n".encode()
    return delay, body


def wsgi(environ, start_response):
    delay, body = _answer(environ.get("QUERY_STRING", ""))
    if delay > 0:
        time.sleep(delay)
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]


async def asgi(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    delay, body = _answer(scope.get("query_string", b"").decode("latin-1"))
    while (await receive()).get("more_body"):
        pass
    if delay > 0:
        time.sleep(delay)               # blocks this worker's event loop, on purpose
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
