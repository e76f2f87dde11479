"""ws_echo.py PORT - a WebSocket echo server (python3-websockets): text and
binary messages come back as they went; "bye" closes with 1000 "done"."""
import asyncio
import sys

import websockets


async def echo(ws, path=None):
    async for msg in ws:
        if msg == "bye":
            await ws.close(1000, "done")
            return
        await ws.send(msg)


async def main():
    async with websockets.serve(echo, "127.0.0.1", int(sys.argv[1])):
        print("listening", flush=True)
        await asyncio.Future()


asyncio.run(main())
