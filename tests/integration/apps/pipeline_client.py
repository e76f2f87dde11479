"""Send several HTTP/1.1 requests in a single send() and print the raw reply.

    pipeline_client.py PORT PATH...

One request per PATH, all on one connection and written at once; the last
carries "Connection: close", so the server closes after answering it. The
bytes received until then go to stdout unchanged. Gives up after 10 s.
"""

import socket
import sys


def main():
    port = int(sys.argv[1])
    paths = sys.argv[2:]
    reqs = []
    for i, path in enumerate(paths):
        last = i == len(paths) - 1
        reqs.append(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                    + ("Connection: close\r\n" if last else "") + "\r\n")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall("".join(reqs).encode())
        got = []
        while True:
            data = s.recv(65536)
            if not data:
                break
            got.append(data)
    sys.stdout.buffer.write(b"".join(got))


if __name__ == "__main__":
    main()
