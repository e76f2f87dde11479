"""A FastAPI app behind Starlette's GZipMiddleware (preload_fastapi.bats):
GET /account answers JSON with a secret field, compressed when the client
accepts gzip."""
from fastapi import FastAPI
from starlette.middleware.gzip import GZipMiddleware

app = FastAPI()
app.add_middleware(GZipMiddleware, minimum_size=16)


@app.get("/account")
def account():
    return {"user": "bob", "password": "hunter2", "note": "readable " * 20}
