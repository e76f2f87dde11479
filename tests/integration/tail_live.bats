#!/usr/bin/env bats
# tail_live.bats - `httptape tail` on the log of a real tapped server
# (Python's http.server): one line per exchange with method, path and
# status, both after the fact and followed with -f.
#
# The server and the background `tail -f` are stopped in teardown, pass or fail.

load test_helper/common

setup() {
    WWW="$BATS_TEST_TMPDIR/www"
    mkdir -p "$WWW"
    printf 'hello\n' >"$WWW/a.txt"
    test_server_vars
    start_tapped http "$LOG" "$PY" -m http.server "$PORT" --bind 127.0.0.1 \
        --directory "$WWW" --protocol HTTP/1.1
    wait_http "$BASE/"
}

teardown() {
    stop_server
}

@test "tail: a live server's log shows one line per exchange with method, path and status" {
    curl -s --max-time 5 -o /dev/null "$BASE/a.txt?v=1"
    curl -s --max-time 5 -o /dev/null "$BASE/missing"
    curl -s --max-time 5 -o /dev/null -I "$BASE/a.txt"
    wait_exchanges "$LOG" 3
    run --separate-stderr timeout 5 "$HTTPTAPE" tail "$LOG"
    assert_success
    assert_equal "$stderr" ""
    assert_equal "${#lines[@]}" 3
    assert_line --index 0 --regexp ' GET /a\.txt\?v=1 200 .* req=0B resp=6B '
    assert_line --index 1 --partial ' GET /missing 404 '
    assert_line --index 2 --regexp ' HEAD /a\.txt 200 .* resp=0B '
}

@test "tail: -f shows a live server's exchanges as they happen" {
    : >"$LOG"                         # tail -f starts on an existing, empty log
    start_bg tail "$HTTPTAPE" tail -f "$LOG"
    curl -s --max-time 5 -o /dev/null "$BASE/a.txt"
    wait_output ' GET /a.txt 200 '
    curl -s --max-time 5 -o /dev/null "$BASE/missing"
    wait_output ' GET /missing 404 '
    run cat "$SERVER_OUT"
    assert_equal "${#lines[@]}" 2
}

@test "tail: two long header names that share their first 255 bytes stay two keys" {
    local prefix
    prefix=$(printf 'x%.0s' $(seq 300))
    curl -s --max-time 5 -o /dev/null -H "X-$prefix-One: 1" -H "X-$prefix-Two: 2" "$BASE/a.txt"
    wait_exchanges "$LOG" 1
    run --separate-stderr timeout 5 "$HTTPTAPE" tail --json "$LOG"
    assert_success
    # jq keeps one of two equal keys: both full names must be there.
    run jq -r --arg p "x-$prefix" '.http.request.header | to_entries[]
        | select(.key | startswith($p)) | "\(.key | ltrimstr($p)) \(.value[0])"' <<<"$output"
    assert_success
    assert_output "-one 1
-two 2"
}
