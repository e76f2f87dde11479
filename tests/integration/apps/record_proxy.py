"""A TCP relay that records each connection the way tcpflow would.

    record_proxy.py LISTEN_PORT TARGET_PORT OUTDIR

Accepts on 127.0.0.1:LISTEN_PORT and relays every connection to
127.0.0.1:TARGET_PORT. The bytes of each direction of the upstream leg (the
connection the server sees) are written to OUTDIR under tcpflow-style names,
SRCIP.SRCPORT-DSTIP.DSTPORT with zero-padded octets:

    127.000.000.001.PROXYPORT-127.000.000.001.TARGET   client -> server
    127.000.000.001.TARGET-127.000.000.001.PROXYPORT   server -> client

Each pair is first written as NAME.part and renamed once both directions are
closed, so a file under its final name is complete. Prints "listening" when
ready. Half-closes are passed on.
"""

import os
import socket
import sys
import threading


def flow_name(src, dst):
    def ep(addr):
        ip, port = addr[:2]
        return ".".join(f"{int(o):03d}" for o in ip.split(".")) + f".{port:05d}"
    return f"{ep(src)}-{ep(dst)}"


def pump(src, dst, path):
    with open(path, "wb") as out:
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            if not data:
                break
            out.write(data)
            try:
                dst.sendall(data)
            except OSError:
                break
    try:
        dst.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def relay(client, target_port, outdir):
    upstream = socket.create_connection(("127.0.0.1", target_port))
    mine, theirs = upstream.getsockname(), upstream.getpeername()
    c2s = os.path.join(outdir, flow_name(mine, theirs))
    s2c = os.path.join(outdir, flow_name(theirs, mine))
    threads = [
        threading.Thread(target=pump, args=(client, upstream, c2s + ".part")),
        threading.Thread(target=pump, args=(upstream, client, s2c + ".part")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    client.close()
    upstream.close()
    os.rename(c2s + ".part", c2s)
    os.rename(s2c + ".part", s2c)


def main():
    listen_port, target_port, outdir = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", listen_port))
    srv.listen(16)
    print("listening", flush=True)
    while True:
        client, _ = srv.accept()
        threading.Thread(target=relay, args=(client, target_port, outdir), daemon=True).start()


if __name__ == "__main__":
    main()
