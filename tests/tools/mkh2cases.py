#!/usr/bin/python3
"""mkh2cases.py - writes the HTTP/2 golden cases (tests/cases/h2-*/client,
server) from frames built here by hand, so that shapes a well-behaved
library would refuse to send (padding everywhere, CONTINUATION, uppercase
names, frames on closed streams) can be written too. HPACK comes from
Debian's python3-hpack. expect.jsonl is written by hand, not here.

    /usr/bin/python3 tests/tools/mkh2cases.py   (from the repo root)
"""
import os
import struct

from hpack import Encoder

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST, SETTINGS, PUSH, PING, GOAWAY, WINDOW, CONT = range(10)
END_STREAM, END_HEADERS, PADDED, PRIO = 0x1, 0x4, 0x8, 0x20


def frame(ftype, flags, stream, payload=b""):
    n = len(payload)
    return struct.pack(">BHBBI", n >> 16, n & 0xFFFF, ftype, flags, stream) + payload


def settings(entries=(), ack=False):
    return frame(SETTINGS, 1 if ack else 0, 0, b"".join(struct.pack(">HI", k, v) for k, v in entries))


def headers(enc, stream, fields, end_stream=False, pad=0, prio=False, split=None):
    """HEADERS (padded, with priority when asked), the block cut into
    CONTINUATION frames at the offsets in split."""
    block = enc.encode(fields)
    cuts = [0] + (split or []) + [len(block)]
    parts = [block[a:b] for a, b in zip(cuts, cuts[1:])]
    flags = (END_STREAM if end_stream else 0) | (END_HEADERS if len(parts) == 1 else 0)
    pre = b""
    if pad:
        flags |= PADDED
        pre += bytes([pad])
    if prio:
        flags |= PRIO
        pre += struct.pack(">IB", 0, 15)
    out = frame(HEADERS, flags, stream, pre + parts[0] + b"\0" * pad)
    for i, p in enumerate(parts[1:], 1):
        out += frame(CONT, END_HEADERS if i == len(parts) - 1 else 0, stream, p)
    return out


def data(stream, body, end_stream=False, pad=0):
    flags = END_STREAM if end_stream else 0
    if pad:
        return frame(DATA, flags | PADDED, stream, bytes([pad]) + body + b"\0" * pad)
    return frame(DATA, flags, stream, body)


def write(name, client, server):
    d = os.path.join("tests", "cases", name)
    os.makedirs(d, exist_ok=True)
    for side, b in (("client", client), ("server", server)):
        with open(os.path.join(d, side), "wb") as f:
            f.write(b)


def basic():
    """Two streams, the second answered first; a POST body in two DATA
    frames; the dynamic table reused by both sides."""
    ce, se = Encoder(), Encoder()
    req = [(":method", "GET"), (":scheme", "http"), (":authority", "example.test"),
           (":path", "/a?x=1"), ("user-agent", "mk/1"), ("accept", "*/*")]
    c = PREFACE + settings([(3, 100), (4, 65535)])
    c += headers(ce, 1, req, end_stream=True)
    c += headers(ce, 3, [(":method", "POST"), (":scheme", "http"), (":authority", "example.test"),
                         (":path", "/submit"), ("user-agent", "mk/1"), ("content-type", "text/plain"),
                         ("content-length", "11")])
    c += data(3, b"hello ") + data(3, b"world", end_stream=True)
    c += settings(ack=True)
    s = settings([(3, 128)]) + settings(ack=True)
    s += headers(se, 3, [(":status", "201"), ("content-type", "text/plain"), ("content-length", "2")])
    s += data(3, b"ok", end_stream=True)
    s += headers(se, 1, [(":status", "200"), ("content-type", "text/plain"), ("content-length", "5")])
    s += data(1, b"hello", end_stream=True)
    write("h2-basic", c, s)


def shapes():
    """Padding and priority on HEADERS, a block in three CONTINUATIONs,
    padded DATA, an interim 103, response trailers, PING and
    WINDOW_UPDATE between them."""
    ce, se = Encoder(), Encoder()
    req = [(":method", "GET"), (":scheme", "https"), (":authority", "shapes.test:8443"),
           (":path", "/long"), ("x-one", "a" * 40), ("x-two", "b" * 40), ("cookie", "k=v")]
    c = PREFACE + settings()
    c += headers(ce, 1, req, end_stream=True, pad=7, prio=True, split=[10, 30])
    c += frame(PING, 0, 0, b"12345678") + frame(WINDOW, 0, 0, struct.pack(">I", 1 << 20))
    s = settings() + frame(PING, 1, 0, b"12345678")
    s += headers(se, 1, [(":status", "103"), ("link", "</s.css>; rel=preload")])
    s += headers(se, 1, [(":status", "200"), ("content-type", "text/plain")], pad=3)
    s += data(1, b"padded ", pad=5) + data(1, b"body")
    s += headers(se, 1, [("x-checksum", "abc")], end_stream=True)
    write("h2-frame-shapes", c, s)


def resets():
    """A stream the client resets, one the server resets mid-response,
    and a GOAWAY after which the last stream is not served."""
    ce, se = Encoder(), Encoder()

    def get(path):
        return [(":method", "GET"), (":scheme", "http"), (":authority", "r.test"), (":path", path)]
    c = PREFACE + settings()
    c += headers(ce, 1, get("/one"), end_stream=True)
    c += headers(ce, 3, get("/two"), end_stream=True)
    c += headers(ce, 5, get("/three"), end_stream=True)
    c += headers(ce, 7, get("/four"), end_stream=True)
    c += frame(RST, 0, 1, struct.pack(">I", 8))
    s = settings()
    s += headers(se, 3, [(":status", "200")]) + data(3, b"partial")
    s += frame(RST, 0, 3, struct.pack(">I", 2))
    s += headers(se, 5, [(":status", "204")], end_stream=True)
    s += frame(GOAWAY, 0, 0, struct.pack(">II", 5, 0) + b"bye")
    write("h2-reset-goaway", c, s)


def anomalies():
    """Fields RFC 9113 forbids, a content-length the DATA disagrees with,
    and DATA on a stream already closed."""
    ce, se = Encoder(), Encoder()
    c = PREFACE + settings()
    c += headers(ce, 1, [(":method", "POST"), (":scheme", "http"), (":authority", "a.test"),
                         ("x-early", "1"), (":path", "/up"), ("X-Upper", "v"),
                         ("connection", "keep-alive"), ("content-length", "10"),
                         ("x-inject", "a\r\nx-forged: 1")])
    c += data(1, b"short", end_stream=True)
    c += data(1, b"late")
    c += headers(ce, 3, [(":method", "GET"), (":scheme", "http"), (":authority", "a.test"),
                         (":path", "/after")], end_stream=True)
    s = settings()
    s += headers(se, 1, [(":status", "400")], end_stream=True)
    s += headers(se, 3, [(":status", "200"), ("content-length", "0")], end_stream=True)
    write("h2-anomalies", c, s)


def push():
    """A server push: PUSH_PROMISE on stream 1 promising stream 2, then
    both responses."""
    ce, se = Encoder(), Encoder()
    c = PREFACE + settings()
    c += headers(ce, 1, [(":method", "GET"), (":scheme", "http"), (":authority", "p.test"),
                         (":path", "/index.html")], end_stream=True)
    s = settings()
    block = se.encode([(":method", "GET"), (":scheme", "http"), (":authority", "p.test"),
                       (":path", "/style.css")])
    s += frame(PUSH, END_HEADERS, 1, struct.pack(">I", 2) + block)
    s += headers(se, 1, [(":status", "200"), ("content-type", "text/html")])
    s += data(1, b"<html></html>", end_stream=True)
    s += headers(se, 2, [(":status", "200"), ("content-type", "text/css")])
    s += data(2, b"body{}", end_stream=True)
    write("h2-push", c, s)


def upgrade():
    """h2c by Upgrade: the HTTP/1 request is stream 1, answered with 101
    and then in HTTP/2; a second request on stream 3."""
    ce, se = Encoder(), Encoder()
    c = (b"GET /up?q=1 HTTP/1.1\r\nHost: u.test\r\nConnection: Upgrade, HTTP2-Settings\r\n"
         b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n")
    c += PREFACE + settings()
    c += headers(ce, 3, [(":method", "GET"), (":scheme", "http"), (":authority", "u.test"),
                         (":path", "/second")], end_stream=True)
    s = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
    s += settings()
    s += headers(se, 1, [(":status", "200"), ("content-length", "3")]) + data(1, b"up!", end_stream=True)
    s += headers(se, 3, [(":status", "404")], end_stream=True)
    write("h2c-upgrade", c, s)


def grpc_msg(payload, compressed=False):
    return struct.pack(">BI", 1 if compressed else 0, len(payload)) + payload


def grpc():
    """gRPC: a unary call answered OK (grpc-status in trailers), a
    server-streaming call of three messages (one compressed, one split
    over two DATA frames), and a call refused trailers-only
    (grpc-status 5 with grpc-message in the only HEADERS)."""
    ce, se = Encoder(), Encoder()

    def call(path):
        return [(":method", "POST"), (":scheme", "http"), (":authority", "g.test"), (":path", path),
                ("content-type", "application/grpc"), ("te", "trailers")]
    c = PREFACE + settings()
    c += headers(ce, 1, call("/demo.Echo/Say")) + data(1, grpc_msg(b"\x0a\x03hey"), end_stream=True)
    c += headers(ce, 3, call("/demo.Echo/Stream")) + data(3, grpc_msg(b"\x08\x03"), end_stream=True)
    c += headers(ce, 5, call("/demo.Echo/Missing")) + data(5, grpc_msg(b""), end_stream=True)
    s = settings()
    ok = [(":status", "200"), ("content-type", "application/grpc")]
    s += headers(se, 1, ok) + data(1, grpc_msg(b"\x0a\x03hey"))
    s += headers(se, 1, [("grpc-status", "0")], end_stream=True)
    m1, m2, m3 = grpc_msg(b"one"), grpc_msg(b"\x1f\x8b-two", compressed=True), grpc_msg(b"three")
    s += headers(se, 3, ok) + data(3, m1 + m2[:3]) + data(3, m2[3:] + m3)
    s += headers(se, 3, [("grpc-status", "0"), ("grpc-message", "")], end_stream=True)
    s += headers(se, 5, ok + [("grpc-status", "5"), ("grpc-message", "no such method%21")],
                 end_stream=True)
    write("h2-grpc", c, s)


def odd_ends():
    """A 1xx that ends its stream (malformed, RFC 9113 8.1), a method with
    a space in it, and a stream the client opens after the server's
    GOAWAY said it would serve none past stream 3."""
    ce, se = Encoder(), Encoder()

    def req(method, path):
        return [(":method", method), (":scheme", "http"), (":authority", "o.test"), (":path", path)]
    c = PREFACE + settings()
    c += headers(ce, 1, req("GET", "/early"), end_stream=True)
    c += headers(ce, 3, req("GET /admin HTTP/1.1", "/x"), end_stream=True)
    s = settings()
    s += headers(se, 1, [(":status", "103")], end_stream=True)
    s += headers(se, 3, [(":status", "400")], end_stream=True)
    s += frame(GOAWAY, 0, 0, struct.pack(">II", 3, 0))
    c += headers(ce, 5, req("GET", "/late"), end_stream=True)
    write("h2-odd-ends", c, s)


if __name__ == "__main__":
    basic()
    shapes()
    resets()
    anomalies()
    push()
    upgrade()
    grpc()
    odd_ends()
