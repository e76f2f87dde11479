"""A threaded http.server app (HTTP/1.1, keep-alive) for the integration tests.

    echo_server.py PORT [--count FILE] [--files DIR] [--gather]

    POST /echo      the request body back. A Content-Length body is answered
                    with Content-Length; a chunked one with a chunked
                    response (the same bytes, re-chunked)
    GET  /hello     ?size=N (default 64, at most 1 MiB): N bytes of text
    GET  /env       the environment of a child process (/usr/bin/env run
                    through subprocess), one VAR=value a line
    GET  /sendfile/NAME   DIR/NAME (--files DIR), the body sent with
                    os.sendfile from the file's own position (offset None),
                    in two halves: the second half is right only if the
                    file position was where sendfile left it
    GET  /splice/NAME     DIR/NAME, the body sent with os.splice: file ->
                    pipe -> socket, 64 KiB at a time
    GET  /writev    ?parts=N1,N2,...: a body of that many bytes, part by
                    part, sent with the head in one os.writev (one segment
                    for the head, one a part; a part may be 0)
    GET  /writev-chunked  ?chunks=K&size=N: a chunked body of K chunks of
                    N bytes, each chunk's data written 1 KiB at a time by
                    os.writev of two segments, with a 0.2 s pause after the
                    first KiB; the last 300 bytes of a chunk go out in one
                    os.writev with its CRLF and the next chunk's size line,
                    the CRLF in the middle of a segment

With --gather the request side is read with socket.recvmsg_into into three
buffers (7 bytes, 93 bytes, the rest), so that one read fills several
iovec segments.

With --tls CERT KEY it speaks HTTPS (python's ssl, OpenSSL underneath).
With --count FILE every request handled appends one line to FILE before it
is answered, so a test can compare the log with what the app really served.
Prints "listening" once the socket is bound; SIGTERM makes it exit normally
(atexit handlers and library destructors run).
"""

import argparse
import http.server
import io
import os
import signal
import subprocess
import sys
import threading
import time
from urllib.parse import parse_qs, urlsplit

COUNT_FILE = None
COUNT_LOCK = threading.Lock()
FILES = None
GATHER = False


def pattern(tag, n):
    """n bytes of text that differ by position and by tag (a part's letter)."""
    unit = b"%c0123456789" % tag
    return (unit * (n // len(unit) + 1))[:n]


class GatherReader(io.RawIOBase):
    """The connection read with recvmsg_into into three buffers (--gather)."""

    def __init__(self, sock):
        self.sock = sock

    def readable(self):
        return True

    def readinto(self, b):
        m = memoryview(b).cast("B")
        if len(m) <= 100:
            return self.sock.recv_into(m)
        return self.sock.recvmsg_into([m[:7], m[7:100], m[100:]])[0]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        if GATHER:
            self.rfile = io.BufferedReader(GatherReader(self.connection), 8192)

    def log_message(self, *args):
        pass                            # no line per request on stderr

    def count(self):
        if COUNT_FILE:
            with COUNT_LOCK, open(COUNT_FILE, "a") as f:
                f.write(f"{self.command} {self.path}\n")

    def send_body(self, body, ctype="text/plain"):
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def read_chunked(self):
        parts = []
        while True:
            line = self.rfile.readline(65537)
            size = int(line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass                # trailer fields
                return b"".join(parts)
            parts.append(self.rfile.read(size))
            self.rfile.readline(3)      # CRLF after the chunk data

    def do_POST(self):
        self.count()
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            body = self.read_chunked()
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            step = 65536
            for off in range(0, len(body), step):
                piece = body[off:off + step]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
            return
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_body(body, self.headers.get("Content-Type", "application/octet-stream"))

    def do_GET(self):
        self.count()
        url = urlsplit(self.path)
        if url.path == "/hello":
            size = min(int(parse_qs(url.query).get("size", ["64"])[0]), 1 << 20)
            line = b"hello from echo_server\n"
            self.send_body((line * (size // len(line) + 1))[:size])
        elif url.path == "/env":
            out = subprocess.run(["/usr/bin/env"], capture_output=True, check=True).stdout
            self.send_body(out)
        elif url.path == "/writev":
            parts = [int(n) for n in parse_qs(url.query)["parts"][0].split(",")]
            self.send_writev([pattern(65 + i, n) for i, n in enumerate(parts)])
        elif url.path == "/writev-chunked":
            q = parse_qs(url.query)
            self.send_writev_chunked(int(q["chunks"][0]), int(q["size"][0]))
        elif url.path.startswith(("/sendfile/", "/splice/")) and FILES:
            how, name = url.path[1:].split("/", 1)
            self.send_file(os.path.join(FILES, os.path.basename(name)), how)
        else:
            self.send_error(404)

    def head_bytes(self, fields):
        self.send_response_only(200)
        for name, value in fields:
            self.send_header(name, value)
        head = b"".join(self._headers_buffer) + b"\r\n"
        self._headers_buffer = []
        return head

    def writev_all(self, segs):
        """os.writev, then whatever a short write left, with sendall."""
        n = os.writev(self.connection.fileno(), segs)
        rest = b"".join(segs)[n:]
        if rest:
            self.connection.sendall(rest)

    def send_writev(self, parts):
        head = self.head_bytes([("Content-Type", "text/plain"),
                                ("Content-Length", str(sum(map(len, parts))))])
        self.writev_all([head] + parts)

    def send_writev_chunked(self, chunks, size):
        self.writev_all([self.head_bytes([("Content-Type", "text/plain"),
                                          ("Transfer-Encoding", "chunked")]),
                         b"%x\r\n" % size])
        for c in range(chunks):
            data = pattern(65 + c, size)
            body, tail = data[:-300], data[-300:]
            for off in range(0, len(body), 1024):
                piece = body[off:off + 1024]
                self.writev_all([piece[:512], piece[512:]])
                if off == 0:
                    time.sleep(0.2)         # attach tells the kernel to skip the rest
            after = b"%x\r\n" % size if c + 1 < chunks else b"0\r\n\r\n"
            self.writev_all([tail[:200], tail[200:] + b"\r\n" + after[:1], after[1:]])

    def send_file(self, path, how):
        try:
            f = open(path, "rb")
        except OSError:
            self.send_error(404)
            return
        with f:
            size = os.fstat(f.fileno()).st_size
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(size))
            self.end_headers()          # wfile is unbuffered: the head is out
            out = self.connection.fileno()
            if how == "sendfile":
                for part in (size // 2, size - size // 2):
                    while part > 0:
                        n = os.sendfile(out, f.fileno(), None, part)
                        if n == 0:
                            raise OSError("file shrank")
                        part -= n
                return
            r, w = os.pipe()
            try:
                left = size
                while left > 0:
                    n = os.splice(f.fileno(), w, min(left, 65536))
                    if n == 0:
                        raise OSError("file shrank")
                    left -= n
                    while n > 0:
                        n -= os.splice(r, out, n)
            finally:
                os.close(r)
                os.close(w)


def main():
    global COUNT_FILE, FILES, GATHER
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("--count")
    ap.add_argument("--files")
    ap.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    ap.add_argument("--gather", action="store_true")
    args = ap.parse_args()
    port, COUNT_FILE, FILES, GATHER = args.port, args.count, args.files, args.gather
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    if args.tls:
        import ssl
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls[0], args.tls[1])
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    print("listening", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
