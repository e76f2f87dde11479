"""A forking HTTP/1.1 server for the attach tests: the parent accepts each
connection and forks a child that serves it (socketserver.ForkingMixIn),
so the connection is one the child inherited, not one it accepted.

    attach_forking_server.py PORT

    GET /hello?name=N   "hello, N" (keep-alive)
    POST /echo          the request body back

Prints "listening" once bound; SIGTERM stops it.
"""

import http.server
import signal
import socketserver
import sys
from urllib.parse import parse_qs, urlsplit


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, body):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        url = urlsplit(self.path)
        name = parse_qs(url.query).get("name", ["world"])[0]
        self.reply(f"hello, {name}\n".encode())

    def do_POST(self):
        self.reply(self.rfile.read(int(self.headers.get("Content-Length", "0"))))


class Server(socketserver.ForkingMixIn, http.server.HTTPServer):
    pass


def main():
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server = Server(("127.0.0.1", int(sys.argv[1])), Handler)
    print("listening", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
