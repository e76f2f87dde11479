# closer_app.py - an HTTP/1.1 server whose /closeall closes every fd but its
# listener and the current connection (os.closerange and close, the way
# daemons sweep descriptors): the tap's log fd must survive it.
import http.server, os, sys, socketserver
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        if self.path == "/closeall":
            listen_fd = self.server.fileno(); conn_fd = self.connection.fileno()
            lo, hi = sorted([listen_fd, conn_fd])
            os.closerange(hi + 1, 4096)      # a daemon-style sweep above our fds
            for fd in range(3, 4096):
                if fd not in (listen_fd, conn_fd):
                    try: os.close(fd)
                    except OSError: pass
        body = b"ok\n"
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
