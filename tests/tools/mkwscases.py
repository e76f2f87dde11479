#!/usr/bin/python3
"""mkwscases.py - writes the golden cases for what follows a 101 or a
CONNECT (tests/cases/websocket-*, tunnel-connect: client, server; the
expect.jsonl files are written by hand): WebSocket frames built here,
masked from the client, a fragmented message, control frames between its
fragments, a close with its code and reason.

    /usr/bin/python3 tests/tools/mkwscases.py   (from the repo root)
"""
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mkh2cases import write  # noqa: E402  (one writer of case files)


def frame(op, payload, fin=True, mask=None):
    b0 = (0x80 if fin else 0) | op
    n = len(payload)
    if n < 126:
        head = struct.pack(">BB", b0, (0x80 if mask else 0) | n)
    elif n < 65536:
        head = struct.pack(">BBH", b0, (0x80 if mask else 0) | 126, n)
    else:
        head = struct.pack(">BBQ", b0, (0x80 if mask else 0) | 127, n)
    if mask:
        payload = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
        return head + mask + payload
    return head + payload


def websocket():
    m = b"\x11\x22\x33\x44"
    c = (b"GET /chat HTTP/1.1\r\nHost: w.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    c += frame(1, b"hello", mask=m)
    c += frame(1, b"frag-", fin=False, mask=m) + frame(9, b"pi", mask=m) + frame(0, b"ment", mask=m)
    c += frame(2, bytes(range(200)), mask=m)
    c += frame(8, struct.pack(">H", 1001) + b"going away", mask=m)
    s = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n")
    s += frame(1, b"hello") + frame(10, b"pi") + frame(1, b"x" * 300)
    s += frame(8, struct.pack(">H", 1001))
    write("websocket-frames", c, s)


def connect():
    c = b"CONNECT db.test:5432 HTTP/1.1\r\nHost: db.test:5432\r\n\r\n" + b"q" * 1000
    s = b"HTTP/1.1 200 Connection established\r\n\r\n" + b"r" * 2500
    write("tunnel-connect", c, s)


if __name__ == "__main__":
    websocket()
    connect()
