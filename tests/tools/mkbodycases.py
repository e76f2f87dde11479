#!/usr/bin/python3
"""mkbodycases.py - writes golden cases about bodies (tests/cases/NAME/:
client, server; expect.jsonl by hand): a multipart/form-data upload with
a text field, a secret field, a file part and a preamble.

    /usr/bin/python3 tests/tools/mkbodycases.py   (from the repo root)
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mkh2cases import write  # noqa: E402


def multipart():
    b = b"--a-Boundary_42"
    body = (b"preamble, ignored\r\n" + b + b"\r\n"
            b"Content-Disposition: form-data; name=\"title\"\r\n\r\nmy cat\r\n" + b + b"\r\n"
            b"Content-Disposition: form-data; name=\"password\"\r\n\r\nhunter2\r\n" + b + b"\r\n"
            b"Content-Disposition: form-data; name=\"photo\"; filename=\"cat.png\"\r\n"
            b"Content-Type: image/png\r\n\r\n" + bytes(range(256)) * 20 + b"\r\n--a-Boundary\r\n" +
            b"\r\n" + b + b"--\r\nepilogue")
    req = (b"POST /upload HTTP/1.1\r\nHost: m.test\r\n"
           b"Content-Type: multipart/form-data; boundary=\"a-Boundary_42\"\r\n"
           b"Content-Length: %d\r\n\r\n" % len(body)) + body
    write("multipart-upload", req, b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")


if __name__ == "__main__":
    multipart()
