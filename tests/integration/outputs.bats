#!/usr/bin/env bats
# outputs.bats - the log's other destinations, with real receivers:
#   - `--log unix:PATH`: JSON lines to a Unix stream socket (a log shipper),
#     from a peer there at start, one that comes later, and one that goes
#     away mid-run and comes back: the app keeps serving, what could not be
#     delivered is counted (dropped_write_error) and said once on stderr.
#   - `--log fd:N`: JSON lines to a descriptor run inherited (a shell
#     redirect), which no process of the server holds.
# The server is python's http.server under `httptape run`; the receiver is
# apps/unix_receiver.py. Teardown stops both, pass or fail.

load test_helper/common

setup() {
    test_server_vars
    D=$BATS_TEST_TMPDIR
    # A socket path must fit in 108 bytes: not under the bats tmpdir.
    SOCKDIR=$(mktemp -d /tmp/httptape-out.XXXXXX)
    SOCK=$SOCKDIR/ship.sock
    OUT=$D/received.jsonl
    : >"$OUT"
}

teardown() {
    stop_server
    rm -rf "$SOCKDIR"
}

start_receiver() {
    start_bg receiver "$PY" "$APPS/unix_receiver.py" "$SOCK" "$OUT" "$@"
    RECEIVER_PID=$SERVER_PID
    wait_output listening
}

start_app() {
    start_tapped server "$1" "$PY" -m http.server --bind 127.0.0.1 --directory "$D" "$PORT"
    wait_http "$BASE/"
}

# get URL...: one request each; prints the status codes.
get() {
    run bash -c 'for u; do curl -s --max-time 10 -o /dev/null -w "%{http_code}\n" "$u"; done' get "$@"
    assert_success
}

# final_stats FILE: waits up to 10 s for the collector's final statistics
# record in FILE (it writes it after the server is gone), and prints it.
final_stats() {
    local st
    for _ in $(seq 100); do
        st=$(jq -R -c 'fromjson? | select(.httptape.type == "stats" and .httptape.final)' "$1")
        [ -n "$st" ] && break
        sleep 0.1
    done
    echo "$st"
}

@test "outputs: --log unix:PATH sends every exchange as a JSON line to the socket" {
    start_receiver
    start_app "unix:$SOCK"
    get "$BASE/a" "$BASE/b" "$BASE/c"
    assert_output "$(printf '404\n404\n404')"
    wait_exchanges "$OUT" 3
    stop_server server
    # The final statistics record reaches the socket too, nothing dropped.
    run jq -R -r 'fromjson | .httptape.type' "$OUT"
    assert_success
    assert_equal "$(exchanges "$OUT" | jq -r .url.path | sort | tr '\n' ' ')" "/a /b /c "
    assert_equal "$(final_stats "$OUT" | jq .httptape.stats.exchanges_dropped)" 0
}

@test "outputs: a socket peer absent at start, gone mid-run and back: the app serves, losses counted and said once" {
    start_app "unix:$SOCK"
    SERVER_LOG=$SERVER_OUT
    # No one listens yet: the app serves anyway; the collector says so once.
    get "$BASE/early"
    assert_output 404
    for _ in $(seq 50); do grep -q 'cannot connect to log socket' "$SERVER_LOG" && break; sleep 0.1; done
    start_receiver
    # Reconnected within the backoff (at most 5 s); later exchanges arrive.
    for i in $(seq 80); do
        curl -s --max-time 5 -o /dev/null "$BASE/up$i"
        [ "$(count_exchanges "$OUT")" -ge 1 ] && break
        sleep 0.1
    done
    wait_exchanges "$OUT" 1
    # The receiver goes away mid-run: the app keeps serving.
    stop_server receiver
    for i in 1 2 3 4 5; do
        get "$BASE/gone$i"
        assert_output 404
        sleep 0.3
    done
    grep -q 'log socket .*: ' "$SERVER_LOG"
    # Back again: new exchanges arrive, the drops are in the statistics.
    start_receiver
    for i in $(seq 80); do
        curl -s --max-time 5 -o /dev/null "$BASE/back$i"
        exchanges "$OUT" | grep -q '/back' && break
        sleep 0.1
    done
    stop_server server
    run grep -c '/back' "$OUT"
    [ "$output" -ge 1 ]
    run grep -c '"/gone' "$OUT"
    assert_output 0
    local st
    st=$(final_stats "$OUT")
    # The five /gone at least; /early too unless the receiver was up by the
    # collector's next try (it retries from 100 ms on).
    [ "$(jq .httptape.stats.dropped_write_error <<<"$st")" -ge 5 ]
    # Each outage said once.
    assert_equal "$(grep -c 'cannot connect to log socket' "$SERVER_LOG")" 1
    assert_equal "$(grep -c 'connected again' "$SERVER_LOG")" 2
}

@test "outputs: a socket reader that does not keep up: the app serves, no half line, drops counted" {
    # The receiver accepts, then reads nothing for 6 s: the socket fills.
    start_receiver 6
    start_app "unix:$SOCK"
    SERVER_LOG=$SERVER_OUT
    local start=$SECONDS
    run timeout 60 curl -s -o /dev/null -w '%{http_code}\n' "$BASE/slow[1-2000]"
    assert_success
    [ "$(grep -c '^404$' <<<"$output")" -eq 2000 ]
    echo "2000 requests in $((SECONDS - start)) s" >&3
    grep -q 'the reader does not keep up' "$SERVER_LOG"
    assert_equal "$(grep -c 'the reader does not keep up' "$SERVER_LOG")" 1
    # The reader catches up (it reads again 6 s after it accepted); the
    # final statistics record then finds room.
    wait_exchanges "$OUT" 1
    sleep 1
    stop_server server
    local st
    st=$(final_stats "$OUT")
    [ -n "$st" ] || { tail -c 2000 "$OUT" >&3; false; }
    # Every line that arrived is whole JSON; what did not is counted.
    run jq -R -r 'fromjson | .httptape.type' "$OUT"
    assert_success
    local seen written dropped got
    seen=$(jq .httptape.stats.exchanges_seen <<<"$st")
    written=$(jq .httptape.stats.exchanges_written <<<"$st")
    dropped=$(jq .httptape.stats.dropped_write_error <<<"$st")
    got=$(count_exchanges "$OUT")
    echo "seen $seen written $written dropped $dropped got $got in $((SECONDS - start)) s" >&3
    [ "$seen" -eq 2000 ]
    [ "$dropped" -gt 0 ]
    [ "$((written + dropped))" -eq 2000 ]
    [ "$got" -eq "$written" ]
}

@test "outputs: --log fd:N writes to the descriptor, which no process of the server holds" {
    local file=$D/fd.jsonl
    start_bg server bash -c "exec \"\$0\" run --log fd:7 -- \"$PY\" -m http.server --bind 127.0.0.1 --directory \"$D\" $PORT 7>>\"$file\"" "$HTTPTAPE"
    wait_http "$BASE/"
    get "$BASE/x" "$BASE/y"
    wait_exchanges "$file" 2
    # Nothing of the server holds the log: only the collector.
    local held pid
    for pid in $(server_processes "$SERVER_PID"); do
        held=$(fd_holders "$file" | awk -v p="$pid" '$1 == p')
        assert_equal "$held" ""
    done
    [ -n "$(fd_holders "$file")" ]      # the collector has it
    stop_server server
    assert_equal "$(exchanges "$file" | jq -r .url.path | sort | tr '\n' ' ')" "/x /y "
}

@test "outputs: --log fd:N names a descriptor that is not open: run and collect refuse" {
    run "$HTTPTAPE" run --log fd:9 -- true
    assert_failure 2
    assert_output --partial 'descriptor 9 is not open'
    run timeout 10 "$HTTPTAPE" collect --log fd:9
    assert_failure 2
    assert_output --partial 'descriptor 9 is not open'
}

@test "outputs: httptape collect --log fd:N takes a standing collector's lines to the descriptor" {
    local file=$D/coll.jsonl
    start_bg collector bash -c "exec \"\$0\" collect --log fd:7 7>>\"$file\"" "$HTTPTAPE"
    wait_output HTTPTAPE_COLLECTOR=
    local addr
    addr=$(grep -o 'HTTPTAPE_COLLECTOR=.*' "$SERVER_OUT" | cut -d= -f2)
    start_bg server env HTTPTAPE_COLLECTOR="$addr" LD_PRELOAD="$HTTPTAPE_LIB" \
        "$PY" -m http.server --bind 127.0.0.1 --directory "$D" "$PORT"
    wait_http "$BASE/"
    get "$BASE/k"
    wait_exchanges "$file" 1
    assert_equal "$(exchanges "$file" | jq -r .url.path)" "/k"
}
