"""Open N keep-alive connections, one request each, then hold them idle.

    idle_conns.py HOST PORT N PATH

Each connection sends `GET PATH` (HTTP/1.1, keep-alive), reads the whole
response, and is then left open and idle. When all N are open the script
prints `ready N` on stdout and waits until stdin reaches EOF or it gets
SIGTERM; then it closes them. scripts/bench.sh reads the server's VmRSS
before and after, to get the memory added per idle connection.
"""

import resource
import signal
import socket
import sys


def read_response(sock):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before the response head")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed inside the response body")
        body += chunk


def main():
    host, port, n, path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n + 64:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 1024), hard))
    request = ("GET %s HTTP/1.1\r\nHost: %s:%d\r\n\r\n" % (path, host, port)).encode()
    conns = []
    for _ in range(n):
        s = socket.create_connection((host, port), timeout=10)
        s.sendall(request)
        read_response(s)
        conns.append(s)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("ready %d" % len(conns), flush=True)
    try:
        sys.stdin.read()
    finally:
        for s in conns:
            s.close()


if __name__ == "__main__":
    main()
