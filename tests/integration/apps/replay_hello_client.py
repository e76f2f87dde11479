"""A TLS client whose ClientHello is also sent, first, on a second
connection (as a client replaying another's would), for tls.bats.

    replay_hello_client.py PORT CA_FILE

Makes one ClientHello (ssl.SSLObject on memory BIOs), sends it on a
"copy" connection and then on the "real" one, finishes the handshake on the
real one only, GETs /replayed there and prints the response body.
"""

import socket
import ssl
import sys


def main():
    port, ca = int(sys.argv[1]), sys.argv[2]
    ctx = ssl.create_default_context(cafile=ca)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(inc, out, server_hostname="localhost")
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = out.read()
    copy = socket.create_connection(("127.0.0.1", port), timeout=10)
    real = socket.create_connection(("127.0.0.1", port), timeout=10)
    copy.sendall(hello)
    real.sendall(hello)

    def pump():
        pending = out.read()
        if pending:
            real.sendall(pending)
        data = real.recv(65536)
        if not data:
            sys.exit("the server closed the connection")
        inc.write(data)

    while True:
        try:
            tls.do_handshake()
            break
        except ssl.SSLWantReadError:
            pump()
    tls.write(b"GET /replayed HTTP/1.1\r\nHost: localhost\r\n\r\n")
    resp = b""
    while True:
        head, _, body = resp.partition(b"\r\n\r\n")
        if _ and b"content-length: %d" % len(body) in head.lower():
            break
        try:
            resp += tls.read(65536)
        except ssl.SSLWantReadError:
            pump()
    print(body.decode())
    real.close()
    copy.close()


if __name__ == "__main__":
    main()
