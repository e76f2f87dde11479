#!/usr/bin/env bats
# framing.bats - framing disagreements with a real server: Python's
# http.server never reads a request body, so a GET with a Content-Length
# body has the server read the body as the next request. httptape frames by
# the fields (RFC 9112 6.3); the log must say where the two readings part
# (docs/events.md: body_on_bodiless_method, desync_suspected, gap
# ambiguous_framing) instead of pairing requests with the wrong responses
# silently.
#
# Each test starts its own tapped server; teardown stops it, pass or fail.

load test_helper/common

setup() {
    PORT=$(free_port)
    LOG="$BATS_TEST_TMPDIR/log.jsonl"
    WWW="$BATS_TEST_TMPDIR/www"
    mkdir -p "$WWW"
    printf 'pub\n' >"$WWW/public"
    printf 'sec\n' >"$WWW/secret"
    printf 'aft\n' >"$WWW/after"
    start_tapped http "$LOG" "$PY" -m http.server "$PORT" --bind 127.0.0.1 \
        --directory "$WWW" --protocol HTTP/1.1
    wait_http "http://127.0.0.1:$PORT/"
}

teardown() {
    stop_server
}

summary() {
    exchanges "$LOG" | jq -c '{path: .url.path, resp: .http.response.body.content,
        complete: .httptape.complete, gaps: .httptape.gaps, anomalies: .httptape.anomalies}'
}

@test "framing: a request hidden in a GET body is flagged, and so are the exchanges it mispairs" {
    run "$PY" "$APPS/smuggle_client.py" "$PORT" together
    assert_success
    assert_output 3                         # the server answered three requests
    wait_exchanges "$LOG" 3
    run summary
    assert_line --index 0 '{"path":"/public","resp":"pub\n","complete":false,"gaps":["ambiguous_framing"],"anomalies":["body_on_bodiless_method","desync_suspected"]}'
    # /after is paired with the hidden request's response: flagged, not complete.
    assert_line --index 1 '{"path":"/after","resp":"sec\n","complete":false,"gaps":["ambiguous_framing"],"anomalies":["desync_suspected"]}'
    assert_line --index 2 '{"path":null,"resp":"aft\n","complete":false,"gaps":["no_request","ambiguous_framing"],"anomalies":["desync_suspected"]}'
    assert_equal "${#lines[@]}" 3
}

@test "framing: after the hidden request's answer, a request sent once all was answered is in sync again" {
    run "$PY" "$APPS/smuggle_client.py" "$PORT" wait
    assert_success
    assert_output 3
    wait_exchanges "$LOG" 3
    run summary
    assert_line --index 0 '{"path":"/public","resp":"pub\n","complete":false,"gaps":["ambiguous_framing"],"anomalies":["body_on_bodiless_method","desync_suspected"]}'
    assert_line --index 1 '{"path":null,"resp":"sec\n","complete":false,"gaps":["no_request","ambiguous_framing"],"anomalies":["desync_suspected"]}'
    assert_line --index 2 '{"path":"/after","resp":"aft\n","complete":true,"gaps":null,"anomalies":null}'
    assert_equal "${#lines[@]}" 3
}
