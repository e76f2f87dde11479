"""Write the two directions of one keep-alive connection for `httptape replay`.

    mkstream.py DIR N

Creates DIR/127.000.000.001.40000-127.000.000.001.08000 (client -> server)
and DIR/127.000.000.001.08000-127.000.000.001.40000 (server -> client), the
tcpflow names replay reads addresses from: N exchanges of the FastAPI
benchmark (wrk's POST /submit with a small JSON body, uvicorn's answer).
Timing `httptape replay` over them gives a synthetic figure for one thread
parsing, building and writing typical events (scripts/bench.sh).
"""

import os
import sys

BODY = b'{"item":"server","qty":3,"tags":["a","b"]}'
ANSWER = b'{"status":"received","data":{"item":"server","qty":3,"tags":["a","b"]}}'
REQUEST = (b"POST /submit HTTP/1.1\r\n"
           b"Host: 127.0.0.1:8000\r\n"
           b"User-Agent: bench/1.0\r\n"
           b"Accept: */*\r\n"
           b"Content-Type: application/json\r\n"
           b"Content-Length: %d\r\n\r\n" % len(BODY)) + BODY
RESPONSE = (b"HTTP/1.1 200 OK\r\n"
            b"date: Sun, 22 Nov 2026 00:31:02 GMT\r\n"
            b"server: uvicorn\r\n"
            b"content-length: %d\r\n"
            b"content-type: application/json\r\n\r\n" % len(ANSWER)) + ANSWER


def main():
    out, n = sys.argv[1], int(sys.argv[2])
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "127.000.000.001.40000-127.000.000.001.08000"), "wb") as f:
        f.write(REQUEST * n)
    with open(os.path.join(out, "127.000.000.001.08000-127.000.000.001.40000"), "wb") as f:
        f.write(RESPONSE * n)


if __name__ == "__main__":
    main()
