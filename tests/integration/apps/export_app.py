"""A threaded http.server app whose answers depend only on the request, so
export.bats can send the exported curl commands again and compare.

    export_app.py PORT

    GET    /items/ID      {"id": ID, "q": <query q>, "x-test": <X-Test field>}
    HEAD   /items/ID      the same head, no body
    PUT    /items/ID      201, "stored N bytes: <sha256 of the body>"
    DELETE /items/ID      204
    POST   /echo          the body back with the request's Content-Type
    POST   /login         {"user": <form field user>, "auth": <Authorization
                          scheme>}  (a form body; its password is redacted)
    GET    /bin           the 256 bytes 0..255 (logged as base64)
    POST   /bin           the sha256 of the (binary) body
    GET    /fail          500 "boom"

Prints "listening" once bound; exits on SIGTERM.
"""

import hashlib
import http.server
import json
import signal
import sys
import urllib.parse


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def answer(self, status, data=b"", ctype="text/plain", head=False):
        self.send_response(status)
        if status != 204:
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if not head and status != 204:
            self.wfile.write(data)

    def items(self, head=False):
        url = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(url.query).get("q", [""])[0]
        doc = {"id": url.path.rsplit("/", 1)[1], "q": q, "x-test": self.headers.get("X-Test")}
        self.answer(200, json.dumps(doc).encode(), "application/json", head)

    def do_GET(self):
        if self.path.startswith("/items/"):
            self.items()
        elif self.path == "/bin":
            self.answer(200, bytes(range(256)), "application/octet-stream")
        elif self.path == "/fail":
            self.answer(500, b"boom")
        else:
            self.answer(404, b"no such path")

    def do_HEAD(self):
        self.items(head=True)

    def do_PUT(self):
        data = self.body()
        msg = "stored %d bytes: %s" % (len(data), hashlib.sha256(data).hexdigest())
        self.answer(201, msg.encode())

    def do_DELETE(self):
        self.answer(204)

    def do_POST(self):
        data = self.body()
        if self.path == "/echo":
            self.answer(200, data, self.headers.get("Content-Type", "application/octet-stream"))
        elif self.path == "/login":
            form = urllib.parse.parse_qs(data.decode())
            scheme = (self.headers.get("Authorization") or "").split(" ")[0]
            doc = {"user": form.get("user", [""])[0], "auth": scheme}
            self.answer(200, json.dumps(doc).encode(), "application/json")
        elif self.path == "/bin":
            self.answer(200, hashlib.sha256(data).hexdigest().encode())
        else:
            self.answer(404, b"no such path")


def main():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
    print("listening", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
