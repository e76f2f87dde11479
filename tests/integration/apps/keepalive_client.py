"""One keep-alive connection through http.client, for the attach tests:
BEFORE requests, then a wait (up to 30 s) until FILE exists, then AFTER
requests, all on the same connection.

    keepalive_client.py PORT FILE BEFORE AFTER [inflight]

Request k is GET /hello?size=k+10&n=k. With "inflight", a POST /echo is
under way during the wait: its head and half its 20-byte body are sent
before, the rest after. One line per response: "STATUS SIZE". Exits 1 if
the connection was not kept (a second socket was opened).
"""

import http.client
import os
import sys
import time


def wait_for(path):
    deadline = time.monotonic() + 30
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise SystemExit("timed out waiting for " + path)
        time.sleep(0.05)


def main():
    port, go, before, after = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    inflight = sys.argv[5:] == ["inflight"]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    sock = None
    for k in range(before + after + inflight):
        if k == before and inflight:
            conn.putrequest("POST", "/echo")
            conn.putheader("Content-Length", "20")
            conn.endheaders(b"0123456789")
            print("sent half", flush=True)
            wait_for(go)
            conn.send(b"abcdefghij")
        elif k == before:
            wait_for(go)
            conn.request("GET", f"/hello?size={k + 10}&n={k}")
        else:
            conn.request("GET", f"/hello?size={k + 10}&n={k}")
        resp = conn.getresponse()
        body = resp.read()
        print(resp.status, len(body), flush=True)
        if sock is None:
            sock = conn.sock
        elif conn.sock is not sock:
            raise SystemExit("the connection was not kept alive")
    conn.close()


if __name__ == "__main__":
    main()
