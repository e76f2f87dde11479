"""A threaded http.server app (HTTP/1.1, keep-alive) for the integration tests.

    echo_server.py PORT [--count FILE] [--files DIR]

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

With --tls CERT KEY it speaks HTTPS (python's ssl, OpenSSL underneath).
With --count FILE every request handled appends one line to FILE before it
is answered, so a test can compare the log with what the app really served.
Prints "listening" once the socket is bound; SIGTERM makes it exit normally
(atexit handlers and library destructors run).
"""

import argparse
import http.server
import os
import signal
import subprocess
import sys
import threading
from urllib.parse import parse_qs, urlsplit

COUNT_FILE = None
COUNT_LOCK = threading.Lock()
FILES = None


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

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
        elif url.path.startswith(("/sendfile/", "/splice/")) and FILES:
            how, name = url.path[1:].split("/", 1)
            self.send_file(os.path.join(FILES, os.path.basename(name)), how)
        else:
            self.send_error(404)

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
    global COUNT_FILE, FILES
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("--count")
    ap.add_argument("--files")
    ap.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    args = ap.parse_args()
    port, COUNT_FILE, FILES = args.port, args.count, args.files
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
