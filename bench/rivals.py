"""Count what the rival tools of `make bench` recorded (the nginx_rivals group).

    rivals.py count --out RIVALS.jsonl --key WORKLOAD/NAME --kind KIND --body FILE
                    --sent N --runs N [--tool-cpu-ms MS] [--stderr FILE]... -- OUTPUT...

Run by scripts/bench.sh after the group's servers have stopped, outside every
timed window. KIND says how to read the OUTPUT files (one per wrk run, or the
one log of a server that ran the whole group):

  pcap      tcpdump -w files, read back with `tshark -r FILE -Y http -T fields`
            (tshark's TCP reassembly and HTTP dissector), then as `tshark`
  tshark    the tab-separated records of `tshark -Y http -T fields` (FIELDS)
  httpry    httpry's log: one line per request ('>') and per response ('<')
  mitmdump  mitmdump -w flow files, read with the mitmproxy module
  strace    strace -f -s 65536 -o FILE output of nginx
  httptape  httptape's JSON-lines log

For every kind three counts: requests seen, responses seen, and exchanges
recorded (a request and its response both there: a flow or a paired
record; for the kinds that do not pair, min(requests, responses)). Then
"whole": recorded exchanges whose record holds the request, the response's
status and the response body, byte for byte the file nginx served (--body).
--stderr files are the tools' own closing statistics; every "N packets
dropped" in them is summed (kernel or capture-buffer drops).

Appends one JSON object per call to --out; scripts/bench.sh passes the file
to bench/report.py.
"""

import argparse
import json
import re
import subprocess
import sys

# The fields `tshark -T fields` writes, live (bench.sh's tshark row) and when
# reading tcpdump's pcap back: bench.sh passes the same list (rivals.py fields).
FIELDS = ["frame.time_epoch", "tcp.stream", "http.request.method", "http.request.uri",
          "http.response.code", "http.response_for.uri", "http.request_in",
          "http.content_length", "http.file_data"]


def unescape_tshark(value):
    """tshark prints string fields with C escapes (\\n, \\t, \\\\, \\xNN)."""
    if "\\" not in value:
        return value.encode("utf-8", "surrogateescape")
    return value.encode("latin-1", "backslashreplace").decode("unicode_escape").encode("latin-1", "replace")


def count_tshark_lines(lines, body, counts):
    for line in lines:
        cols = line.rstrip("\n").split("\t")
        if len(cols) < len(FIELDS):
            cols += [""] * (len(FIELDS) - len(cols))
        rec = dict(zip(FIELDS, cols))
        if rec["http.request.method"]:
            counts["requests"] += len(rec["http.request.method"].split(","))
        if rec["http.response.code"]:
            codes = rec["http.response.code"].split(",")
            counts["responses"] += len(codes)
            linked = [x for x in rec["http.request_in"].split(",") if x]
            counts["recorded"] += min(len(codes), len(linked))
            # One response per frame is the case here (wrk does not pipeline);
            # a frame with several answers counts whole only when it has one.
            if len(codes) == 1 and linked and codes[0] == "200" and \
                    unescape_tshark(rec["http.file_data"]) == body:
                counts["whole"] += 1


def count_pcap(path, body, counts):
    cmd = ["tshark", "-n", "-r", path, "-Y", "http", "-T", "fields"]
    for f in FIELDS:
        cmd += ["-e", f]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            errors="surrogateescape")
    count_tshark_lines(proc.stdout, body, counts)
    err = proc.stderr.read()
    if proc.wait() != 0:
        # A capture cut by SIGINT can end in a partial packet: tshark says so
        # and exits non-zero after printing everything before it.
        counts.setdefault("read_errors", []).append("%s: %s" % (path.rsplit("/", 1)[-1], err.strip()[-200:]))


def count_httpry(path, body, counts):
    del body        # httpry logs no body: nothing it records is whole
    for line in open(path, errors="replace"):
        if line.startswith("#"):
            continue
        cols = line.rstrip("\n").split("\t")
        if len(cols) < 10:
            continue
        if cols[3] == ">" and cols[4] != "-":
            counts["requests"] += 1
        elif cols[3] == "<" and cols[8] != "-":
            counts["responses"] += 1
    counts["recorded"] = min(counts["requests"], counts["responses"])


def count_mitmdump(path, body, counts):
    from mitmproxy import io as mio     # Debian's python3-mitmproxy, with the mitmproxy package
    from mitmproxy.exceptions import FlowReadException
    with open(path, "rb") as f:
        try:
            for flow in mio.FlowReader(f).stream():
                req = getattr(flow, "request", None)
                resp = getattr(flow, "response", None)
                if req is not None:
                    counts["requests"] += 1
                if resp is not None:
                    counts["responses"] += 1
                if req is not None and resp is not None:
                    counts["recorded"] += 1
                    if resp.status_code == 200 and resp.raw_content == body:
                        counts["whole"] += 1
        except FlowReadException as e:
            counts.setdefault("read_errors", []).append("%s: %s" % (path.rsplit("/", 1)[-1], e))


STRACE_IN = re.compile(r'\b(?:recvfrom|recv|read|readv|recvmsg)\(\d+, .*"GET ')
STRACE_OUT = re.compile(r'\b(?:writev|write|sendto|send|sendmsg)\(\d+, .*"HTTP/1\.[01] (\d{3})')


def count_strace(path, body, counts):
    needle = body.decode("latin-1")
    responses_whole = 0
    for line in open(path, errors="replace"):
        if STRACE_IN.search(line):
            counts["requests"] += 1
        m = STRACE_OUT.search(line)
        if m:
            counts["responses"] += 1
            # The body is whole only when the same write carried it: nginx
            # sends a file with sendfile(2), whose bytes strace never shows.
            if m.group(1) == "200" and needle in line:
                responses_whole += 1
    counts["recorded"] = min(counts["requests"], counts["responses"])
    counts["whole"] = min(counts["recorded"], responses_whole)


def count_httptape(path, body, counts):
    text = body.decode("utf-8", "replace")
    for line in open(path, errors="replace"):
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        http = ev.get("http") if isinstance(ev, dict) else None
        if not isinstance(http, dict):
            continue
        req, resp = http.get("request"), http.get("response")
        if req:
            counts["requests"] += 1
        if resp:
            counts["responses"] += 1
        if req and resp:
            counts["recorded"] += 1
            b = resp.get("body") or {}
            if resp.get("status_code") == 200 and b.get("content") == text and not b.get("encoding"):
                counts["whole"] += 1


READERS = {"pcap": count_pcap, "tshark": None, "httpry": count_httpry, "mitmdump": count_mitmdump,
           "strace": count_strace, "httptape": count_httptape}
DROPPED = re.compile(r"(\d+) packets? dropped")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("command", choices=["count", "fields"])
    ap.add_argument("--out")
    ap.add_argument("--key")
    ap.add_argument("--kind", choices=sorted(READERS))
    ap.add_argument("--body")
    ap.add_argument("--sent", type=int, default=0)
    ap.add_argument("--runs", type=int, default=0)
    ap.add_argument("--tool-cpu-ms", type=int, default=None)
    ap.add_argument("--stderr", action="append", default=[])
    argv = sys.argv[1:]
    files = argv[argv.index("--") + 1:] if "--" in argv else []
    args = ap.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    args.files = files
    if args.command == "fields":       # for bench.sh: the tshark -e arguments
        print(" ".join(FIELDS))
        return 0
    body = open(args.body, "rb").read()
    counts = {"requests": 0, "responses": 0, "recorded": 0, "whole": 0}
    missing = []
    for path in args.files:
        try:
            if args.kind == "tshark":
                with open(path, errors="surrogateescape") as f:
                    count_tshark_lines(f, body, counts)
            else:
                part = {"requests": 0, "responses": 0, "recorded": 0, "whole": 0}
                READERS[args.kind](path, body, part)
                for k, v in part.items():
                    if k == "read_errors":
                        counts.setdefault(k, []).extend(v)
                    else:
                        counts[k] += v
        except FileNotFoundError:
            missing.append(path.rsplit("/", 1)[-1])
    dropped = None
    for path in args.stderr:
        try:
            for m in DROPPED.finditer(open(path, errors="replace").read()):
                dropped = (dropped or 0) + int(m.group(1))
        except FileNotFoundError:
            pass
    counts.update(key=args.key, kind=args.kind, sent=args.sent, runs=args.runs, files=len(args.files),
                  missing=missing, dropped_packets=dropped, tool_cpu_ms=args.tool_cpu_ms)
    with open(args.out, "a") as f:
        f.write(json.dumps(counts) + "\n")
    print("%s: %d requests, %d responses, %d exchanges recorded, %d whole; wrk completed %d" % (
        args.key, counts["requests"], counts["responses"], counts["recorded"], counts["whole"], args.sent))
    return 0


if __name__ == "__main__":
    sys.exit(main())
