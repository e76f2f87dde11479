#!/usr/bin/env bats
# collector.bats - the collector process that owns the log (docs/architecture.md):
# who holds the log, what happens when the collector dies, plain LD_PRELOAD
# starting one of its own without the app noticing, and a standing
# `httptape collect` shared by two servers.
#
# Every server and collector a test starts is stopped by teardown, also the
# collectors, found as the processes that hold the test's log open.

load test_helper/common

setup() {
    test_server_vars
}

teardown() {
    stop_server
    stop_holders "$LOG"
}

get() {
    local p
    for p in "$@"; do
        curl -s --max-time 5 -o /dev/null "$BASE$p" || return 1
    done
}

# The one process that holds the log open: the collector.
collector_pid() {
    local pids
    pids=$(fd_holders "$LOG" | awk '{print $1}' | sort -un)
    [ "$(echo "$pids" | grep -c .)" -eq 1 ] || { echo "log holders: '$pids'" >&2; return 1; }
    echo "$pids"
}

# start_collect: a standing `httptape collect --log $LOG` (server name coll);
# sets addr to the address it printed.
start_collect() {
    start_bg coll "$HTTPTAPE" collect --log "$LOG"
    for _ in $(seq 50); do
        grep -q '^HTTPTAPE_COLLECTOR=' "$SERVER_OUT" && break
        sleep 0.1
    done
    addr=$(sed -n 's/^HTTPTAPE_COLLECTOR=//p' "$SERVER_OUT")
    [ -n "$addr" ]
}

@test "collector: under run, the collector holds the log and the server does not; it exits after the server" {
    start_tapped http "$LOG" "$PY" -m http.server "$PORT" --bind 127.0.0.1
    wait_http "$BASE/"
    get /a /b
    wait_exchanges "$LOG" 2
    coll=$(collector_pid)
    [ "$coll" != "$SERVER_PID" ]
    # Not the server's child either: the server's wait() never sees it.
    run pgrep -P "$SERVER_PID"
    assert_failure
    stop_server
    wait_no_holders "$LOG" 10
    run jq -c 'select(.httptape.type == "stats" and .httptape.final) | [.process.pid, .httptape.stats.exchanges_written]' "$LOG"
    assert_output "[$SERVER_PID,2]"
}

@test "collector: run started with its standard input closed still has a collector for the whole run" {
    # (Its pidfd of the server then got number 0, and the collector's
    # /dev/null for stdin took that number: it took the server for gone.)
    start_bg http bash -c 'exec 0<&-; exec "$@"' _ "$HTTPTAPE" run --log "$LOG" -- \
        "$PY" -m http.server "$PORT" --bind 127.0.0.1
    wait_http "$BASE/"
    sleep 1
    get /a /b
    wait_exchanges "$LOG" 2
    # The log is run's collector's, not one the library had to start.
    coll=$(collector_pid)
    run cat "/proc/$coll/comm"
    assert_output httptape-coll
}

@test "collector: killed mid-run, the server keeps serving, the loss is said once and a new collector logs what follows" {
    start_tapped http "$LOG" "$PY" -m http.server "$PORT" --bind 127.0.0.1
    wait_http "$BASE/"
    get /before1 /before2
    wait_exchanges "$LOG" 2
    old=$(collector_pid)
    kill -9 "$old"
    # The server answers throughout; within a few seconds (no heartbeat
    # for 3 s) its library notices the collector is gone and starts one.
    for i in $(seq 1 60); do
        run curl -s --max-time 5 -o /dev/null -w '%{http_code}' "$BASE/after$i"
        assert_output 404
        sleep 0.1
    done
    run grep -c "the collector (pid $old) is gone" "$SERVER_OUT"
    assert_output 1
    grep -q "a new collector takes over" "$SERVER_OUT"
    new=$(collector_pid)
    [ "$new" != "$old" ]
    # What came after the takeover is in the same log, whole.
    get /later
    for _ in $(seq 50); do
        grep -q '"/later"' "$LOG" && break
        sleep 0.1
    done
    run jq -r 'select(.httptape.type == "exchange" and .url.path == "/later") | .httptape.complete' "$LOG"
    assert_output true
    run jq -r 'select(.httptape.type == "exchange") | .url.path' "$LOG"
    assert_line /before1
    assert_line /before2
}

@test "collector: plain LD_PRELOAD starts a collector of its own; the app gets no SIGCHLD and has no child" {
    cat >"$BATS_TEST_TMPDIR/app.py" <<'EOF'
import http.server, signal, sys
caught = []
signal.signal(signal.SIGCHLD, lambda *a: caught.append(1))
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("sigchld %d\n" % len(caught)).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
EOF
    start_bg app env LD_PRELOAD="$HTTPTAPE_LIB" HTTPTAPE_LOG="$LOG" "$PY" "$BATS_TEST_TMPDIR/app.py" "$PORT"
    wait_http "$BASE/"
    get /one
    run curl -s --max-time 5 "$BASE/two"
    assert_output "sigchld 0"
    wait_exchanges "$LOG" 2
    coll=$(collector_pid)
    [ "$coll" != "$SERVER_PID" ]
    run pgrep -P "$SERVER_PID"
    assert_failure
    run tr '\0' ' ' <"/proc/$coll/cmdline"
    assert_output --partial "collect --for $SERVER_PID"
    stop_server
    wait_no_holders "$LOG" 10
    run jq -c 'select(.httptape.type == "stats" and .httptape.final) | .httptape.stats.exchanges_written' "$LOG"
    assert_output 2
}

@test "collector: a standing httptape collect takes two servers' records into one log until SIGTERM" {
    start_collect
    PORT2=$(free_port)
    start_bg s1 env LD_PRELOAD="$HTTPTAPE_LIB" HTTPTAPE_COLLECTOR="$addr" "$PY" -m http.server "$PORT" --bind 127.0.0.1
    wait_http "$BASE/"
    start_bg s2 env LD_PRELOAD="$HTTPTAPE_LIB" HTTPTAPE_COLLECTOR="$addr" "$PY" -m http.server "$PORT2" --bind 127.0.0.1
    wait_http "http://127.0.0.1:$PORT2/"
    get /from-one
    curl -s --max-time 5 -o /dev/null "http://127.0.0.1:$PORT2/from-two"
    wait_exchanges "$LOG" 2
    run jq -r 'select(.httptape.type == "exchange") | .url.path' "$LOG"
    assert_line /from-one
    assert_line /from-two
    # Neither server holds the log: only the standing collector does.
    run collector_pid
    assert_output "$(cat "$BATS_TEST_TMPDIR/coll.pid")"
    stop_server s1 s2
    stop_server coll
    run jq -c 'select(.httptape.type == "stats" and .httptape.final) | .httptape.stats.exchanges_written' "$LOG"
    assert_output 2
}

@test "collector: a registration without the token is refused, counted in the log's statistics and said" {
    start_collect
    local out=$SERVER_OUT
    # Someone who knows the address but not the token: a hello of junk.
    timeout 10 "$PY" -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect("\0httptape-" + sys.argv[1].rsplit(":", 1)[0])
s.sendall(b"\x01" * 64)
s.close()' "$addr"
    # ... and a real server with the right address, still recorded.
    start_bg s1 env LD_PRELOAD="$HTTPTAPE_LIB" HTTPTAPE_COLLECTOR="$addr" "$PY" -m http.server "$PORT" --bind 127.0.0.1
    wait_http "$BASE/"
    get /after-the-junk
    wait_exchanges "$LOG" 1
    stop_server s1
    stop_server coll
    run jq -c 'select(.httptape.type == "stats" and .httptape.final) | [.httptape.stats.registrations_refused, .httptape.stats.exchanges_written]' "$LOG"
    assert_output "[1,1]"
    run cat "$out"
    assert_output --partial "1 registrations were refused"
}

@test "collector: a malformed HTTPTAPE_COLLECTOR is one line, and the app runs unrecorded" {
    run env LD_PRELOAD="$HTTPTAPE_LIB" HTTPTAPE_COLLECTOR="not an address" HTTPTAPE_LOG="$LOG" \
        "$PY" -c 'print("ran")'
    assert_success
    assert_line ran
    assert_line --partial "HTTPTAPE_COLLECTOR: expected NAME:TOKEN"
    run "$HTTPTAPE" collect --address "x"
    assert_failure 2
    assert_output --partial "expected NAME:TOKEN"
}

@test "collector: records lost from a full ring cost one exchange, not the rest of the keep-alive connection" {
    HTTPTAPE_RING_SIZE=64k start_tapped srv "$LOG" "$PY" "$APPS/echo_server.py" "$PORT"
    wait_http "$BASE/"
    run collector_pid
    assert_success
    coll=$output
    # One keep-alive connection: the collector stopped (well under the 3 s
    # after which the app would call it dead) while the server answers far
    # more than a 64 KiB ring holds; then resumed. Once it has drained the
    # ring (a request sent after SIGCONT is in the log: until then the ring
    # may still be full, and that request lost too), 5 more requests.
    run timeout 30 "$PY" - "$PORT" "$coll" "$LOG" <<'PY'
import http.client, os, signal, sys, time
port, coll, log = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
def get(path):
    c.request("GET", path)
    r = c.getresponse()
    r.read()
    return r.status
get("/hello?size=10&before=1")
os.kill(coll, signal.SIGSTOP)
n, t0 = 0, time.time()
try:
    while time.time() - t0 < 1.5:
        get("/hello?size=4000&while_stopped=%d" % n)
        n += 1
finally:
    os.kill(coll, signal.SIGCONT)
drained = False
for i in range(100):                       # at most about 10 s
    get("/hello?size=10&resync=%d" % i)
    time.sleep(0.1)
    with open(log, "rb") as f:
        if b"resync=%d" % i in f.read():
            drained = True
            break
ok = [get("/hello?size=10&after=%d" % i) for i in range(5)]
print(n > 20, drained, ok)
PY
    assert_success
    assert_output "True True [200, 200, 200, 200, 200]"
    stop_server srv
    wait_no_holders "$LOG"
    # The ring overflowed (counted), and the 5 requests after it are logged
    # whole, on the same connection, marked as picked up again.
    run jq -s -c 'map(select(.httptape.type == "stats" and .httptape.final)) | .[0].httptape.stats.records_lost > 0' "$LOG"
    assert_output true
    run jq -c 'select(.httptape.type == "exchange" and (.url.query // "" | startswith("size=10&after=")))
               | [.httptape.complete, .httptape.connection.joined]' "$LOG"
    assert_output $'[true,true]\n[true,true]\n[true,true]\n[true,true]\n[true,true]'
}
