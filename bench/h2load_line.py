"""Turn h2load's summary into the BENCH line scripts/bench.sh reads from wrk.

    h2load_line.py OUT

OUT is what `h2load -D SECONDS ...` printed. Prints, as bench/wrk/report.lua
does for wrk:
  BENCH requests=N duration_us=N rps=F p50_us=0 p99_us=0 errors_connect=N
        errors_read=N errors_write=0 errors_status=N errors_timeout=N
requests: the streams that closed with a response, whatever its status
(h2load's "succeeded", its 2xx and 3xx, plus "failed" less "errored": what
wrk counts); rps: h2load's own figure (those over the -D window). h2load
counts only streams that close within the window: those in flight when it
ends are in no figure. Latency percentiles need h2load's --log-file (a write
per request), which bench.sh does not use: 0, which bench/report.py shows as
n/a. In h2load's counts a timeout is also "errored", and an "errored" stream
also "failed": errors_status is "failed" less "errored" (responses not 2xx
or 3xx), errors_read "errored" less "timeout" (streams reset, cut or
abandoned), errors_timeout "timeout". Exits 1, printing nothing, when OUT
has no summary (h2load failed).
"""

import re
import sys


def parse(text):
    fin = re.search(r"^finished in ([0-9.]+)(us|ms|s), ([0-9.]+) req/s", text, re.M)
    req = re.search(r"^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                    r"(\d+) failed, (\d+) errored, (\d+) timeout", text, re.M)
    if not fin or not req:
        return None
    secs = float(fin.group(1)) * {"us": 1e-6, "ms": 1e-3, "s": 1.0}[fin.group(2)]
    _total, _started, _done, ok, failed, errored, timeout = (int(x) for x in req.groups())
    return ("BENCH requests=%d duration_us=%d rps=%s p50_us=0 p99_us=0 errors_connect=0 "
            "errors_read=%d errors_write=0 errors_status=%d errors_timeout=%d" % (
                ok + failed - errored, secs * 1e6, fin.group(3), errored - timeout, failed - errored,
                timeout))


def main():
    with open(sys.argv[1], errors="replace") as f:
        line = parse(f.read())
    if line is None:
        return 1
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
