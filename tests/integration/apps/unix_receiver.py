"""unix_receiver.py SOCKET OUT [STALL]: a log shipper's end of `--log unix:SOCKET`.

Listens on the Unix stream socket SOCKET, accepts one connection after
another and appends everything each sends to OUT (flushed per read), as a
shipper reading JSON lines would. Exits on SIGTERM.
"""
import os
import signal
import socket
import sys
import time

path, out = sys.argv[1], sys.argv[2]
stall = float(sys.argv[3]) if len(sys.argv) > 3 else 0
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
if os.path.exists(path):
    os.unlink(path)
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(path)
srv.listen(4)
print("listening", flush=True)
with open(out, "ab") as f:
    while True:
        conn, _ = srv.accept()
        with conn:
            print("accepted", flush=True)
            time.sleep(stall)
            stall = 0
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                f.write(data)
                f.flush()
