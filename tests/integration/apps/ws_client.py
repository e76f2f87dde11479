"""ws_client.py PORT - talks to ws_echo.py: a text message, a JSON one
with a password, 3000 binary bytes, a ping, then "bye"; prints what it
got back and the close code."""
import asyncio
import sys

import websockets


async def main():
    async with websockets.connect("ws://127.0.0.1:%s/chat" % sys.argv[1]) as ws:
        await ws.send("hello")
        print(await ws.recv())
        await ws.send('{"user":"tape","password":"hunter2"}')
        print(await ws.recv())
        await ws.send(bytes(range(256)) * 11 + bytes(184))
        print(len(await ws.recv()))
        pong = await ws.ping(b"p1")
        await pong
        print("pong")
        await ws.send("bye")
        try:
            await ws.recv()
        except websockets.ConnectionClosed as e:
            print("closed", e.rcvd.code, e.rcvd.reason)


asyncio.run(main())
