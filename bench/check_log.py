"""Check JSON-lines logs and summarise what is in them.

    check_log.py [--body FILE] LOG...

For each LOG prints one JSON object on stdout:
  file, lines, bad_lines, first_bad ("line N: why"), exchanges (records with
  httptape.type "exchange"), incomplete (exchanges with complete false),
  whole (exchanges logged whole: complete, no capture gap, a 2xx status, the
  response body's size equal to its Content-Length when there is one, and,
  with --body FILE, the body's content, base64 decoded, the file's bytes or,
  when truncated at the cap, a prefix of them),
  stats_records, final (pid -> the stats of that pid's last final record;
  for `httptape attach` logs, "pid@line" -> the stats of every final record,
  since each attach run closes the log it appends to with its own, under its
  own pid, which a later run may get again), pids_with_exchanges.
A line is good when it is strict UTF-8 and exactly one JSON object (no NaN or
Infinity, which Python would otherwise accept). Other JSON-lines logs (the
baseline apps' own) are checked the same way; their httptape counts are 0.
"""

import base64
import json
import sys


def _reject(token):
    raise ValueError("non-JSON constant " + token)


def is_whole(ev, tape, body):
    """The exchange is in the log whole (see the module's docstring)."""
    if tape.get("complete") is not True or tape.get("gaps"):
        return False
    http = ev.get("http")
    resp = http.get("response") if isinstance(http, dict) else None
    if not isinstance(resp, dict) or not isinstance(resp.get("status_code"), int):
        return False
    if not 200 <= resp["status_code"] < 300:
        return False
    b = resp.get("body") or {}
    length = (resp.get("header") or {}).get("content-length")
    if length and str(b.get("size")) != length[0]:
        return False
    if body is None:
        return True
    content = b.get("content", "")
    try:
        got = base64.b64decode(content) if b.get("encoding") == "base64" else content.encode("utf-8")
    except ValueError:
        return False
    if b.get("size") != len(body):
        return False
    return got == body if not b.get("truncated") else (0 < len(got) and body.startswith(got))


def check(path, body=None):
    out = {"file": path, "lines": 0, "bad_lines": 0, "first_bad": None, "exchanges": 0,
           "incomplete": 0, "whole": 0, "stats_records": 0, "final": {}, "pids_with_exchanges": []}
    pids = set()
    decoder = json.JSONDecoder(parse_constant=_reject)
    with open(path, "rb") as f:
        for number, raw in enumerate(f, 1):
            out["lines"] += 1
            try:
                if not raw.endswith(b"\n"):
                    raise ValueError("no newline at the end (cut short)")
                text = raw.decode("utf-8")
                obj = decoder.decode(text)
                if not isinstance(obj, dict):
                    raise ValueError("not a JSON object")
            except ValueError as e:
                out["bad_lines"] += 1
                if out["first_bad"] is None:
                    out["first_bad"] = "line %d: %s" % (number, str(e)[:120])
                continue
            tape = obj.get("httptape")
            if not isinstance(tape, dict):
                continue
            if tape.get("type") == "exchange":
                out["exchanges"] += 1
                if tape.get("complete") is not True:
                    out["incomplete"] += 1
                if is_whole(obj, tape, body):
                    out["whole"] += 1
                pids.add(obj.get("process", {}).get("pid"))
            elif tape.get("type") == "stats":
                out["stats_records"] += 1
                if tape.get("final"):
                    key = str(obj.get("process", {}).get("pid"))
                    if tape.get("mode") == "attach":
                        key += "@%d" % number
                    out["final"][key] = tape.get("stats", {})
    out["pids_with_exchanges"] = sorted(str(p) for p in pids)
    return out


def main():
    args, body = sys.argv[1:], None
    if args[:1] == ["--body"]:
        with open(args[1], "rb") as f:
            body = f.read()
        args = args[2:]
    for path in args:
        print(json.dumps(check(path, body)), flush=True)


if __name__ == "__main__":
    main()
