"""app.py plus the naive body-logging middleware: every POST /submit hangs.

    /usr/bin/python3 -m uvicorn middleware_hang:app --app-dir examples/fastapi --host 127.0.0.1 --port 8001

Why it hangs with Starlette 0.26 (Debian 12's python3-starlette 0.26.1):
`@app.middleware("http")` wraps the function in BaseHTTPMiddleware.  The
middleware's `await request.body()` reads the whole body from the server's
ASGI `receive` and caches it on the middleware's own Request object only.
`call_next` runs the endpoint with the *original* `receive`, and FastAPI builds
a new Request for the handler, so its `await request.json()` asks the server
for body bytes it already handed out.  uvicorn has nothing more to give and
waits for the client, which is itself waiting for the answer: nothing happens
until the client gives up, and then the handler dies with ClientDisconnect.
(Starlette issues #495 and #847; Starlette 0.28 and later re-feed the cached
body to the endpoint, which is why this same code works on newer releases.)
"""

import logging

from fastapi import FastAPI, Request

# A child of uvicorn's own logger, so the line shows up with uvicorn's format.
log = logging.getLogger("uvicorn.body")

app = FastAPI()


@app.middleware("http")
async def log_body(request: Request, call_next):
    body = await request.body()
    log.info("%s %s body=%r", request.method, request.url.path, body)
    return await call_next(request)


@app.post("/submit")
async def submit(request: Request):
    payload = await request.json()
    return {"status": "received", "data": payload}


@app.get("/health")
async def health():
    return {"ok": True}
