"""A scripted HTTP/1.1 client for the attach tests: one connection, steps
run in order, each response read whole before the next step.

    attach_client.py PORT STEP...

A STEP is one of
    get:PATH            GET PATH (keep-alive)
    post:PATH:N         POST N bytes (Content-Length) to PATH
    chunk:PATH:N        POST N bytes to PATH, chunked, in pieces of 1000
    pipe:PATH,PATH,...  GETs written in a single send(), answers read after
    wait:FILE           wait (up to 30 s) until FILE exists
    close               send "Connection: close" on a last GET /, then stop

Response bodies are not printed; one line per response: "STATUS SIZE".
Gives up after 30 s.
"""

import os
import socket
import sys
import time


def read_response(f):
    status = f.readline()
    if not status:
        raise SystemExit("connection closed before a response")
    code = int(status.split()[1])
    length, chunked = None, False
    while True:
        line = f.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
        if name.strip().lower() == "transfer-encoding" and "chunked" in value.lower():
            chunked = True
    body = b""
    if chunked:
        while True:
            size = int(f.readline().split(b";")[0], 16)
            if size == 0:
                while f.readline() not in (b"\r\n", b"\n", b""):
                    pass
                break
            body += f.read(size)
            f.readline()
    elif length is not None:
        body = f.read(length)
    print(code, len(body), flush=True)


def body_of(n):
    pattern = b"0123456789abcdefghijklmnopqrstuvwxyz\n"
    return (pattern * (n // len(pattern) + 1))[:n]


def main():
    port = int(sys.argv[1])
    host = f"127.0.0.1:{port}"
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    f = s.makefile("rb")
    for step in sys.argv[2:]:
        kind, _, arg = step.partition(":")
        if kind == "get":
            s.sendall(f"GET {arg} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            read_response(f)
        elif kind == "post":
            path, n = arg.rsplit(":", 1)
            body = body_of(int(n))
            s.sendall(f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(body)}\r\n"
                      "Content-Type: text/plain\r\n\r\n".encode() + body)
            read_response(f)
        elif kind == "chunk":
            path, n = arg.rsplit(":", 1)
            body = body_of(int(n))
            out = [f"POST {path} HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n"
                   "Content-Type: text/plain\r\n\r\n".encode()]
            for i in range(0, len(body), 1000):
                piece = body[i:i + 1000]
                out.append(b"%x\r\n" % len(piece) + piece + b"\r\n")
            out.append(b"0\r\n\r\n")
            s.sendall(b"".join(out))
            read_response(f)
        elif kind == "pipe":
            paths = arg.split(",")
            s.sendall(b"".join(f"GET {p} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode() for p in paths))
            for _ in paths:
                read_response(f)
        elif kind == "wait":
            deadline = time.time() + 30
            while not os.path.exists(arg):
                if time.time() > deadline:
                    raise SystemExit(f"waited 30 s for {arg}")
                time.sleep(0.05)
        elif kind == "close":
            s.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            read_response(f)
            break
        else:
            raise SystemExit(f"unknown step {step}")
    s.close()


if __name__ == "__main__":
    main()
