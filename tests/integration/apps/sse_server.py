"""sse_server.py PORT - Server-Sent Events: GET /events answers
text/event-stream, 20 events "data: N" 50 ms apart, then closes (the body
ends with the connection)."""
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        self.wfile.flush()
        for i in range(20):
            self.wfile.write(b"data: %d\n\n" % i)
            self.wfile.flush()
            time.sleep(0.05)

    def log_message(self, *args):
        pass


HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
