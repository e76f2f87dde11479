#!/usr/bin/env bats
# stats.bats - `httptape stats`: latency percentiles against a log with known
# quantiles (within the sketch's documented 1%), counts by status class and
# path template, the bound on templates, the slowest, selection, -f, and
# memory on a big log. Logs are generated here; no server is needed.

load test_helper/common

# gen_log FILE N: N exchanges, durations 1..N ms in a shuffled order; every
# 10th a 503, every 25th incomplete (no response, no duration); paths
# /users/<i>/orders and /items/<uuid>; request body i bytes, response 100.
gen_log() {
    "$PY" - "$1" "$2" <<'PY'
import json, random, sys, uuid
path, n = sys.argv[1], int(sys.argv[2])
order = list(range(1, n + 1))
random.Random(1).shuffle(order)
with open(path, "w") as f:
    for k, i in enumerate(order):
        done = i % 25 != 0
        rec = {"timestamp": "2026-11-22T00:31:%02d.%09dZ" % (k % 60, i),
               "http": {"request": {"method": "GET" if i % 2 else "POST", "body": {"size": i}}},
               "url": {"path": "/users/%d/orders" % i if i % 3 else "/items/%s" % uuid.UUID(int=i)},
               "httptape": {"type": "exchange", "complete": done}}
        if done:
            rec["http"]["response"] = {"status_code": 503 if i % 10 == 0 else 200,
                                       "body": {"size": 100}}
            rec["httptape"]["duration_ns"] = i * 1000000
        f.write(json.dumps(rec) + "\n")
        if k == n // 2:
            f.write('{"timestamp":"2026-11-22T00:31:00Z","httptape":{"type":"stats","stats":{}}}\n')
PY
}

setup() {
    LOG="$BATS_TEST_TMPDIR/log.jsonl"
    STATS_PID=
}

teardown() {
    if [ -n "$STATS_PID" ]; then stop_pid "$STATS_PID"; fi
}

@test "stats: p50/p90/p99 of known durations, within the sketch's 1%" {
    gen_log "$LOG" 1000
    run --separate-stderr "$HTTPTAPE" stats --json "$LOG"
    assert_success
    # Timed: the 960 exchanges whose i is not a multiple of 25, durations i ms.
    want=$("$PY" -c '
import math
v = sorted(i * 10**6 for i in range(1, 1001) if i % 25)
print(" ".join(str(v[math.ceil(q * len(v)) - 1]) for q in (0.5, 0.9, 0.99)), len(v), v[0], v[-1])')
    read -r w50 w90 w99 count min max <<<"$want"
    assert_equal "$(jq -c '.latency_ns | [.count, .min, .max, .relative_error]' <<<"$output")" \
        "[$count,$min,$max,0.01]"
    for q in 50:"$w50" 90:"$w90" 99:"$w99"; do
        got=$(jq ".latency_ns.p${q%%:*}" <<<"$output")
        echo "p${q%%:*}: got $got, exact ${q#*:}" >&3
        "$PY" -c "import sys; g, w = $got, ${q#*:}; sys.exit(abs(g - w) > 0.01 * w)"
    done
}

@test "stats: requests, errors (5xx and incomplete), bytes by class and path template" {
    gen_log "$LOG" 1000
    run --separate-stderr "$HTTPTAPE" stats --json "$LOG"
    assert_success
    j=$output
    # 1000 exchanges (the statistics record is not one); 5xx: i % 10 == 0
    # and not % 25 (80); incomplete: i % 25 == 0 (40).
    assert_equal "$(jq -c '[.requests, .errors, .errors_5xx, .incomplete, .request_bytes, .response_bytes]' <<<"$j")" \
        "[1000,120,80,40,500500,96000]"
    assert_equal "$(jq -c '.status_classes | map_values(.requests)' <<<"$j")" '{"2xx":880,"5xx":80,"none":40}'
    # Templates: ids folded; one row per method + template.
    assert_equal "$(jq -c '[.routes[] | "\(.method) \(.path) \(.requests)"] | sort' <<<"$j")" \
        '["GET /items/{id} 167","GET /users/{id}/orders 333","POST /items/{id} 166","POST /users/{id}/orders 334"]'
    assert_equal "$(jq -c '.routes[] | select(.method == "GET" and .path == "/items/{id}") | [.max_ns, .errors]' <<<"$j")" \
        '[999000000,7]'       # odd multiples of 3 and 25: no 5xx (those are even), 7 incomplete
    # The table says the same.
    run --separate-stderr "$HTTPTAPE" stats "$LOG"
    assert_line --index 0 "requests  1000  errors 120 (5xx 80, incomplete 40)  request bytes 500500  response bytes 96000"
    assert_line --regexp '^POST +/users/\{id\}/orders +334 '
    assert_line --regexp '^5xx +80 +80 '
}

@test "stats --max-paths: templates past the bound count under other" {
    for i in $(seq 30); do
        printf '{"http":{"request":{"method":"GET"},"response":{"status_code":200}},"url":{"path":"/p%d/x"},"httptape":{"type":"exchange","duration_ns":%d}}\n' "$i" "$i"
    done >"$LOG"
    run --separate-stderr "$HTTPTAPE" stats --json --max-paths 10 "$LOG"
    assert_equal "$(jq -c '[(.routes | length), .other_routes.requests, .requests]' <<<"$output")" '[10,20,30]'
    run --separate-stderr "$HTTPTAPE" stats --max-paths 10 "$LOG"
    assert_line --regexp '^\* +\(other paths\) +20 '
}

@test "stats --top: the N slowest, slowest first" {
    gen_log "$LOG" 1000
    run --separate-stderr "$HTTPTAPE" stats --json --top 3 "$LOG"
    assert_equal "$(jq -c '[.slowest[] | [.duration_ns, .path, .status]]' <<<"$output")" \
        '[[999000000,"/items/00000000-0000-0000-0000-0000000003e7",200],[998000000,"/users/998/orders",200],[997000000,"/users/997/orders",200]]'
    run --separate-stderr "$HTTPTAPE" stats --top 2 "$LOG"
    assert_line --regexp '^ +999ms  2026-11-22T00:31:[0-9]+\.000000999Z GET /items/00000000-0000-0000-0000-0000000003e7 200$'
}

@test "stats: selection flags choose what is counted" {
    gen_log "$LOG" 1000
    run --separate-stderr "$HTTPTAPE" stats --json --method POST --status 5xx "$LOG"
    assert_equal "$(jq -c '[.requests, .errors_5xx]' <<<"$output")" '[80,80]'    # i % 10 == 0: even, POST
    run --separate-stderr "$HTTPTAPE" stats --json --slower-than 990ms --path '/users/*' "$LOG" "$LOG"
    # i in 991..999 with i % 3 != 0 and i % 25 != 0: 6 each file.
    assert_equal "$(jq .requests <<<"$output")" 12
}

@test "stats -f: counts a log as it grows, printing every interval and at the end" {
    gen_log "$LOG" 10
    "$HTTPTAPE" stats -f --json --interval 1 "$LOG" >"$BATS_TEST_TMPDIR/out" 2>"$BATS_TEST_TMPDIR/err" 3>&- &
    STATS_PID=$!
    for _ in $(seq 50); do grep -q '"requests":10,' "$BATS_TEST_TMPDIR/out" && break; sleep 0.1; done
    grep -q '"requests":10,' "$BATS_TEST_TMPDIR/out"
    gen_log "$BATS_TEST_TMPDIR/more.jsonl" 5
    cat "$BATS_TEST_TMPDIR/more.jsonl" >>"$LOG"
    for _ in $(seq 50); do grep -q '"requests":15,' "$BATS_TEST_TMPDIR/out" && break; sleep 0.1; done
    grep -q '"requests":15,' "$BATS_TEST_TMPDIR/out"
    kill -TERM "$STATS_PID"
    wait "$STATS_PID"
    STATS_PID=
    # The last line is the final report; every line is one JSON object.
    assert_equal "$(tail -n 1 "$BATS_TEST_TMPDIR/out" | jq .requests)" 15
    run jq -e . "$BATS_TEST_TMPDIR/out"
    assert_success
}

@test "stats: usage errors exit 2" {
    run --separate-stderr "$HTTPTAPE" stats --top x "$LOG"
    assert_failure 2
    assert_equal "${stderr_lines[0]}" "httptape stats: bad number 'x'"
    run --separate-stderr "$HTTPTAPE" stats -f "$LOG" "$LOG"
    assert_failure 2
    run --separate-stderr "$HTTPTAPE" stats
    assert_failure 2
}

@test "stats: memory stays flat on a big log" {
    [ -x /usr/bin/time ] || skip "/usr/bin/time is not installed"
    gen_log "$LOG" 200000
    /usr/bin/time -f %M -o "$BATS_TEST_TMPDIR/rss" "$HTTPTAPE" stats --json "$LOG" >"$BATS_TEST_TMPDIR/out"
    rss=$(tail -n 1 "$BATS_TEST_TMPDIR/rss")
    echo "stats: max RSS ${rss} KiB for $(du -k "$LOG" | cut -f1) KiB of log" >&3
    [ "$rss" -lt 20000 ]
    assert_equal "$(jq .requests "$BATS_TEST_TMPDIR/out")" 200000
}
