"""hooks_forking_server.py PORT COUNT - python's stock fork-per-connection
HTTP server (socketserver.ForkingMixIn + http.server): the parent accepts,
a child serves each connection and ends with os._exit. The parent handles
COUNT connections, waits for its children and exits."""
import http.server
import socketserver
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        body = ("served " + self.path + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Server(socketserver.ForkingMixIn, http.server.HTTPServer):
    pass


srv = Server(("127.0.0.1", int(sys.argv[1])), Handler)
print("listening", flush=True)
for _ in range(int(sys.argv[2])):
    srv.handle_request()
srv.server_close()      # waits for the children
