"""A bare FastAPI app for the httptape demo.

There is deliberately no logging middleware: httptape records every request and
response from outside the process, so the app stays exactly as it ships.

    /usr/bin/python3 -m uvicorn app:app --app-dir examples/fastapi --host 127.0.0.1 --port 8000
"""

from fastapi import FastAPI, Request

app = FastAPI()


@app.post("/submit")
async def submit(request: Request):
    payload = await request.json()
    return {"status": "received", "data": payload}


@app.get("/health")
async def health():
    return {"ok": True}
