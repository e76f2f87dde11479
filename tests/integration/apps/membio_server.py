"""HTTPS servers on memory BIOs (ssl.SSLObject), one thread, for tls.bats.

    membio_server.py asyncio|batch PORT CERT KEY

Both answer every GET with its own path (text/plain, keep-alive).

asyncio  asyncio.start_server(ssl=...): asyncio's SSL transport reads a
         socket and hands the bytes to that connection's SSLObject.
batch    a selector loop that reads every ready socket before it hands any
         bytes to an SSLObject, and holds a new connection's first bytes
         until a second new connection has sent its own (or 2 s pass), then
         runs the handshakes in the order the bytes came: the SSL of the
         first connection starts after its thread last read from another.

Prints "listening" once bound; SIGTERM ends it.
"""

import asyncio
import selectors
import signal
import socket
import ssl
import sys
import time


def answer(path):
    body = path.encode()
    return (b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: %d\r\n\r\n"
            % len(body)) + body


def requests_in(buf):
    """The complete GET heads at the start of buf: (paths, rest)."""
    paths = []
    while b"\r\n\r\n" in buf:
        head, buf = buf.split(b"\r\n\r\n", 1)
        paths.append(head.split(b"\r\n", 1)[0].split(b" ")[1].decode())
    return paths, buf


async def serve_asyncio(port, ctx):
    async def conn(reader, writer):
        buf = b""
        while True:
            data = await reader.read(65536)
            if not data:
                break
            paths, buf = requests_in(buf + data)
            for p in paths:
                writer.write(answer(p))
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(conn, "127.0.0.1", port, ssl=ctx)
    print("listening", flush=True)
    async with server:
        await server.serve_forever()


class Conn:
    def __init__(self, sock, ctx):
        self.sock = sock
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.out, server_side=True)
        self.ready = False      # handshake done
        self.plain = b""
        self.first = None       # the first bytes, while held
        self.since = time.monotonic()

    def feed(self, data):
        """Hands data to the SSL, answers what it decrypts; False: close."""
        if data:
            self.inc.write(data)
        else:
            self.inc.write_eof()
        try:
            if not self.ready:
                self.obj.do_handshake()
                self.ready = True
            while True:
                chunk = self.obj.read(65536)
                if not chunk:
                    return False
                paths, self.plain = requests_in(self.plain + chunk)
                for p in paths:
                    self.obj.write(answer(p))
        except ssl.SSLWantReadError:
            pass
        except (ssl.SSLError, OSError):
            return False
        finally:
            pending = self.out.read()
            if pending:
                self.sock.setblocking(True)
                self.sock.sendall(pending)
                self.sock.setblocking(False)
        return bool(data)


def serve_batch(port, ctx):
    lsock = socket.create_server(("127.0.0.1", port))
    lsock.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(lsock, selectors.EVENT_READ)
    conns = []
    print("listening", flush=True)
    while True:
        ready = [k.fileobj for k, _ in sel.select(0.2)]
        got = []
        for s in ready:
            if s is lsock:
                try:
                    c, _ = lsock.accept()
                except BlockingIOError:
                    continue
                c.setblocking(False)
                conns.append(Conn(c, ctx))
                sel.register(c, selectors.EVENT_READ)
                continue
            c = next(x for x in conns if x.sock is s)
            try:
                data = s.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            got.append((c, data))
        # Every ready socket read; now the SSLs.
        for c, data in got:
            if c.first is not None and data:
                c.first += data
                continue
            if not c.ready and c.first is None and data:
                c.first = data
                continue
            if c.first is not None or not c.feed(data):
                sel.unregister(c.sock)
                c.sock.close()
                conns.remove(c)
        held = [c for c in conns if c.first is not None]
        now = time.monotonic()
        if len(held) >= 2 or any(now - c.since > 2 for c in held):
            for c in held:
                data, c.first = c.first, None
                if not c.feed(data):
                    sel.unregister(c.sock)
                    c.sock.close()
                    conns.remove(c)


def main():
    mode, port, cert, key = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    if mode == "asyncio":
        asyncio.run(serve_asyncio(port, ctx))
    else:
        serve_batch(port, ctx)


if __name__ == "__main__":
    main()
