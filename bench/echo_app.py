"""Benchmark: a raw-ASGI echo app for the 1 MB POST (the copying cost).

Any POST gets its own body back as application/octet-stream. No framework,
so the server's per-byte work (and httptape's) is most of what is measured.

    /usr/bin/python3 -m uvicorn echo_app:app --app-dir bench --host 127.0.0.1 --port 8000
"""


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    chunks = []
    more = True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            return
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    body = b"".join(chunks)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/octet-stream"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
