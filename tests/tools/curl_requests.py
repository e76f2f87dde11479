#!/usr/bin/env python3
"""curl_requests.py SCRIPT: the requests a script of curl commands sends, one
JSON object a line, in a form two exporters' scripts can be compared in.

Reads httptape's `export --format curl` scripts and httpsnippet's curl
output: one command per line or continued with backslash-newline, '#'
comments, an optional `printf %s 'BASE64' | base64 -d | ` before curl.
Each request: method, scheme, host, path, query (decoded pairs), headers
(sorted "name: value", lowercased names; Host and Content-Length left out,
as curl makes them), and the body (several --data joined with '&' as curl
does; a form body as decoded pairs, unless piped; otherwise as base64).
"""

import base64
import json
import shlex
import sys
import urllib.parse


def commands(text):
    text = text.replace("\\\n", " ")
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            yield line


def request(cmd):
    words = shlex.split(cmd)
    piped = None
    if words[0] == "printf":
        piped = base64.b64decode(words[2])
        words = words[words.index("curl"):]
    req = {"method": "GET", "headers": [], "data": []}
    i = 1
    while i < len(words):
        w = words[i]
        if w in ("--request", "-X"):
            req["method"] = words[i + 1]; i += 1
        elif w in ("--head", "-I"):
            req["method"] = "HEAD"
        elif w in ("--url",):
            req["url"] = words[i + 1]; i += 1
        elif w in ("--header", "-H"):
            name, _, value = words[i + 1].partition(":")
            if name.lower() not in ("host", "content-length"):
                req["headers"].append("%s: %s" % (name.lower(), value.strip()))
            i += 1
        elif w in ("--data", "--data-binary", "-d", "--data-raw"):
            req["data"].append(words[i + 1]); i += 1
        elif w.startswith("-"):
            pass                            # --globoff, --http1.0, ...
        else:
            req["url"] = w
        i += 1
    url = urllib.parse.urlsplit(req.pop("url"))
    req.update(scheme=url.scheme, host=url.netloc, path=url.path,
               query=urllib.parse.parse_qsl(url.query, keep_blank_values=True))
    req["headers"].sort()
    data = req.pop("data")
    body = piped if piped is not None and data == ["@-"] else "&".join(data).encode()
    ctype = next((h.split(": ", 1)[1] for h in req["headers"]
                  if h.startswith("content-type: ")), "")
    if piped is None and ctype.startswith("application/x-www-form-urlencoded"):
        req["form"] = urllib.parse.parse_qsl(body.decode(), keep_blank_values=True)
    else:
        req["body64"] = base64.b64encode(body).decode()
    return req


def main():
    with open(sys.argv[1]) as f:
        for cmd in commands(f.read()):
            print(json.dumps(request(cmd), sort_keys=True))


if __name__ == "__main__":
    main()
