"""traced_client.py HOST PORT PATH N - N GET requests on one keep-alive
connection, each with a traceparent of its own (trace ids 1..N, in hex);
prints how many were answered 200."""
import http.client
import sys


def main():
    host, port, path, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    conn = http.client.HTTPConnection(host, port, timeout=10)
    ok = 0
    for i in range(1, n + 1):
        conn.request("GET", path, headers={"traceparent": "00-%032x-00f067aa0ba902b7-01" % i})
        r = conn.getresponse()
        r.read()
        ok += r.status == 200
    print(ok)


if __name__ == "__main__":
    main()
