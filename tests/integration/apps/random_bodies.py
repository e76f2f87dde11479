"""Send random bodies to an echo endpoint and check every byte comes back.

    random_bodies.py PORT SEED [COUNT] [MAX_SIZE]

COUNT sizes (default 20) from 0 to MAX_SIZE (default 1.5 MiB) are drawn with
random.Random(SEED); the first is always 0 and the last MAX_SIZE. Each body
is POSTed to /echo?i=<n>&size=<size>&mode=<plain|chunked> twice: once with
Content-Length (plain) and once with Transfer-Encoding: chunked (random chunk
sizes). Every third body is sent on a connection of its own; the others go
two by two, pipelined (both requests written before any answer is read,
from a second thread so a large echo cannot deadlock the two sides).

Prints one JSON line per request: {"i", "size", "mode", "sent_sha256",
"got_sha256", "got_size", "status"}; exits 1 when any echo differs.
Gives up after 30 s per connection.
"""

import hashlib
import json
import random
import socket
import sys
import threading


def request(port, i, body, mode, rng):
    head = (f"POST /echo?i={i}&size={len(body)}&mode={mode} HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{port}\r\nContent-Type: application/octet-stream\r\n")
    if mode == "plain":
        return (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    out = [(head + "Transfer-Encoding: chunked\r\n\r\n").encode()]
    off = 0
    while off < len(body):
        n = min(rng.randint(1, 200000), len(body) - off)
        out.append(b"%x\r\n%s\r\n" % (n, body[off:off + n]))
        off += n
    out.append(b"0\r\n\r\n")
    return b"".join(out)


class Reader:
    """Reads HTTP/1.1 responses (Content-Length or chunked) off a socket."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def fill(self):
        data = self.sock.recv(1 << 20)
        if not data:
            raise EOFError("connection closed mid-response")
        self.buf += data

    def line(self):
        while b"\r\n" not in self.buf:
            self.fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def exactly(self, n):
        while len(self.buf) < n:
            self.fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def response(self):
        status = int(self.line().split()[1])
        headers = {}
        while True:
            line = self.line()
            if not line:
                break
            name, value = line.split(b":", 1)
            headers[name.strip().lower()] = value.strip()
        if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
            parts = []
            while True:
                size = int(self.line().split(b";")[0], 16)
                if size == 0:
                    while self.line():
                        pass
                    return status, b"".join(parts)
                parts.append(self.exactly(size))
                self.exactly(2)
        return status, self.exactly(int(headers.get(b"content-length", b"0")))


def run_connection(port, reqs):
    """reqs: [(i, body, mode, raw)]; all written from a thread, answers read here."""
    results = []
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        writer = threading.Thread(target=lambda: sock.sendall(b"".join(r[3] for r in reqs)))
        writer.start()
        reader = Reader(sock)
        for i, body, mode, _ in reqs:
            status, got = reader.response()
            results.append({"i": i, "size": len(body), "mode": mode,
                            "sent_sha256": hashlib.sha256(body).hexdigest(),
                            "got_sha256": hashlib.sha256(got).hexdigest(),
                            "got_size": len(got), "status": status})
        writer.join()
    return results


def main():
    port, seed = int(sys.argv[1]), int(sys.argv[2])
    count = int(sys.argv[3]) if len(sys.argv) > 3 else 20
    max_size = int(sys.argv[4]) if len(sys.argv) > 4 else 1536 * 1024
    rng = random.Random(seed)
    sizes = [0] + [rng.randint(0, max_size) for _ in range(count - 2)] + [max_size]
    reqs = []
    for n, size in enumerate(sizes):
        body = rng.randbytes(size)
        for mode in ("plain", "chunked"):
            i = len(reqs)
            reqs.append((i, body, mode, request(port, i, body, mode, rng)))
    # Group into connections: every third request alone, the others in pipelined pairs.
    groups, pending = [], []
    for r in reqs:
        if r[0] % 3 == 0:
            groups.append([r])
        else:
            pending.append(r)
            if len(pending) == 2:
                groups.append(pending)
                pending = []
    if pending:
        groups.append(pending)
    bad = 0
    for group in groups:
        for res in run_connection(port, group):
            bad += res["sent_sha256"] != res["got_sha256"] or res["status"] != 200
            print(json.dumps(res), flush=True)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
