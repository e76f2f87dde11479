-- report.lua - loaded by every benchmark script (dofile); wrk calls done()
-- once at the end. Prints one machine-readable line that scripts/bench.sh
-- parses, instead of wrk's human summary:
--   BENCH requests=N duration_us=N rps=F p50_us=N p99_us=N errors_connect=N
--         errors_read=N errors_write=N errors_status=N errors_timeout=N
function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      "BENCH requests=%d duration_us=%d rps=%.1f p50_us=%d p99_us=%d " ..
      "errors_connect=%d errors_read=%d errors_write=%d errors_status=%d errors_timeout=%d\n",
      summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
      latency:percentile(50), latency:percentile(99),
      e.connect, e.read, e.write, e.status, e.timeout))
end
