#!/usr/bin/env bats
# replay.bats - `httptape replay`: one keep-alive connection is recorded by
# a relay (tests/integration/apps/record_proxy.py, tcpflow-style files) in
# front of a tapped server, and replaying the two files must give the same
# events the live capture logged. Also the command's error exits.
#
# The relay names the files after the connection the server saw (relay's
# port -> server port), so even the addresses must agree.

load test_helper/common

# Only what differs by nature between live capture and a replay of files.
NORMALIZE='del(.timestamp, .process, .service, .httptape.mode, .httptape.connection.id,
               .httptape.timing, .httptape.duration_ns)'

setup() {
    LOG="$BATS_TEST_TMPDIR/log.jsonl"
    FLOWS="$BATS_TEST_TMPDIR/flows"
    mkdir -p "$FLOWS"
}

teardown() {
    stop_server
}

# Starts the tapped body_app on APP_PORT and the recording relay in front
# of it; PROXY is the relay's base URL.
start_recorded_server() {
    local port proxy_port
    port=$(free_port)
    APP_PORT=$port
    start_tapped app "$LOG" "$PY" -m uvicorn body_app:app --app-dir "$APPS" \
        --host 127.0.0.1 --port "$port" --no-access-log
    wait_http "http://127.0.0.1:$port/"
    proxy_port=$(free_port)
    start_bg proxy "$PY" "$APPS/record_proxy.py" "$proxy_port" "$port" "$FLOWS"
    wait_output listening
    PROXY="http://127.0.0.1:$proxy_port"
}

@test "replay: a recorded keep-alive connection replays to the events live capture logged" {
    start_recorded_server
    # One connection: a chunked response, a POST with a body and a query, a second chunked one.
    run curl -s --max-time 10 -w '[%{num_connects}]' "$PROXY/stream?n=3" \
        --next -s --max-time 10 -w '[%{num_connects}]' -H 'content-type: text/plain' \
        --data-binary 'hello replay' "$PROXY/echo?tag=x" \
        --next -s --max-time 10 -w '[%{num_connects}]' "$PROXY/stream?n=1"
    assert_success
    assert_output $'part 0\npart 1\npart 2\n[1]hello replay[0]part 0\n[0]'
    wait_exchanges "$LOG" 3

    # The relay renames its two files once the connection is closed.
    for _ in $(seq 100); do
        [ "$(find "$FLOWS" -type f ! -name '*.part' | wc -l)" -eq 2 ] && break
        sleep 0.05
    done
    run find "$FLOWS" -type f ! -name '*.part'
    assert_equal "${#lines[@]}" 2
    app=127.000.000.001.$(printf %05d "$APP_PORT")
    client=$(find "$FLOWS" -type f -name "127.*-$app")     # relay -> server bytes
    server=$(find "$FLOWS" -type f -name "$app-127.*")     # server -> relay bytes
    [ -f "$client" ] && [ -f "$server" ]

    run --separate-stderr "$HTTPTAPE" replay "$client" "$server"
    assert_success
    assert_equal "$stderr" ""
    replayed=$output
    run jq -r .httptape.mode <<<"$replayed"
    assert_output $'replay\nreplay\nreplay'

    # The live events of that connection, with chunked responses and the POST body.
    run jq -sc '[.[] | [.http.request.method, .url.path, .url.query,
                        .http.response.header["transfer-encoding"], .http.request.body.size,
                        .httptape.connection.request_index]]' <(exchanges "$LOG")
    assert_output '[["GET","/stream","n=3",["chunked"],0,0],["POST","/echo","tag=x",null,12,1],["GET","/stream","n=1",["chunked"],0,2]]'

    run jq -s '[.[].httptape.connection.id] | unique | length' <(exchanges "$LOG")
    assert_output 1
    diff <(exchanges "$LOG" | jq -S "$NORMALIZE") <(jq -S "$NORMALIZE" <<<"$replayed")
}

@test "replay: a missing input file exits 1 naming it" {
    printf 'GET / HTTP/1.1\r\nHost: x\r\n\r\n' >"$BATS_TEST_TMPDIR/client"
    run --separate-stderr "$HTTPTAPE" replay "$BATS_TEST_TMPDIR/client" "$BATS_TEST_TMPDIR/nope"
    assert_failure 1
    assert_output ""
    [[ $stderr == *nope* ]]
}

@test "replay: the wrong number of arguments exits 2" {
    run --separate-stderr "$HTTPTAPE" replay "$BATS_TEST_TMPDIR/only-one"
    assert_failure 2
    [[ $stderr == *usage* ]]
    run --separate-stderr "$HTTPTAPE" replay a b c
    assert_failure 2
    run --separate-stderr "$HTTPTAPE" replay
    assert_failure 2
}
