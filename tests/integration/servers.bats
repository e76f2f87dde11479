#!/usr/bin/env bats
# servers.bats - `httptape run` around other real servers and real traffic:
# Python's ThreadingHTTPServer under concurrent keep-alive load (every
# request the app handled is logged, once), Node's `http` server (keep-alive,
# chunked res.write responses, a JSON echo), random bodies up to 1.5 MiB,
# plain and chunked, some pipelined, echoed back byte for byte and logged
# with their exact sizes, and bodies the app sends with sendfile or splice.
#
# Each test starts its own server; teardown stops it, pass or fail. Load is
# bounded in time (wrk -d) and every client has a --max-time or timeout.

load test_helper/common

setup() {
    test_server_vars
}

teardown() {
    stop_server
}

# start_echo [ARGS...]: tests/integration/apps/echo_server.py under httptape.
start_echo() {
    start_tapped echo "$LOG" "$PY" "$APPS/echo_server.py" "$PORT" "$@"
    wait_output listening
}

@test "servers: ThreadingHTTPServer under 20 concurrent keep-alive clients logs every request it handled, once" {
    count="$BATS_TEST_TMPDIR/handled"
    start_echo --count "$count"
    head -c 700 /dev/urandom | base64 -w0 >"$BATS_TEST_TMPDIR/body"   # 936 bytes
    cat >"$BATS_TEST_TMPDIR/post.lua" <<LUA
wrk.method = "POST"
wrk.body = "$(cat "$BATS_TEST_TMPDIR/body")"
wrk.headers["Content-Type"] = "text/plain"
LUA
    run timeout 20 wrk -t2 -c20 -d2s --timeout 5s -s "$BATS_TEST_TMPDIR/post.lua" "$BASE/echo"
    assert_success
    handled=$(wc -l <"$count")
    [ "$handled" -ge 100 ]            # real load, not a handful
    wait_exchanges "$LOG" "$handled"
    sleep 0.3                         # nothing more may arrive
    run count_exchanges "$LOG"
    assert_output "$handled"
    # Every exchange is a whole POST with the 936-byte body echoed back.
    run jq -sc 'group_by([.http.request.method, .url.path, .http.response.status_code,
                          .http.request.body.size, .http.response.body.size, .httptape.complete])
                | map([.[0] | .http.request.method, .url.path, .http.response.status_code,
                       .http.request.body.size, .http.response.body.size, .httptape.complete])' \
        <(exchanges "$LOG")
    assert_output '[["POST","/echo",200,936,936,true]]'
    # Each (connection, request_index) once: nothing logged twice.
    run jq -s '[.[] | [.httptape.connection.id, .httptape.connection.request_index]] | unique | length' \
        <(exchanges "$LOG")
    assert_output "$handled"
    # The clients kept their connections alive: far fewer connections than requests.
    conns=$(exchanges "$LOG" | jq -s '[.[].httptape.connection.id] | unique | length')
    [ "$conns" -le 40 ]
}

@test "servers: node http keep-alive exchanges (plain, chunked res.write, JSON echo) are logged with the right sizes" {
    command -v node >/dev/null || skip "no node on PATH (scripts/install-deps.sh installs nodejs)"
    start_tapped node "$LOG" node "$APPS/node_server.js" "$PORT"
    wait_output listening
    json='{"name":"tape","list":[1,2,3],"nested":{"ok":true}}'
    run curl -s --max-time 5 -w '[%{num_connects}]' "$BASE/hello" \
        --next -s --max-time 5 -w '[%{num_connects}]' "$BASE/chunked?n=4" \
        --next -s --max-time 5 -w '[%{num_connects}]' -H 'content-type: application/json' \
        --data-binary "$json" "$BASE/json"
    assert_success
    echoed='{"echo":{"name":"tape","list":[1,2,3],"nested":{"ok":true}}}'
    assert_output "hello from node
[1]chunk 0
chunk 1
chunk 2
chunk 3
[0]${echoed}[0]"                         # one connection, kept alive for all three
    wait_exchanges "$LOG" 3
    run jq -c '[.http.request.method, .url.path, .http.response.status_code,
                .http.request.body.size, .http.response.body.size,
                .http.response.header["transfer-encoding"], .http.response.body.content,
                .httptape.connection.request_index, .httptape.complete]' <(exchanges "$LOG")
    assert_line --index 0 '["GET","/hello",200,0,16,null,"hello from node\n",0,true]'
    assert_line --index 1 '["GET","/chunked",200,0,32,["chunked"],"chunk 0\nchunk 1\nchunk 2\nchunk 3\n",1,true]'
    assert_line --index 2 "$(jq -nc --arg j "$json" --arg e "$echoed" \
        '["POST","/json",200,($j|length),($e|length),null,$e,2,true]')"
    assert_equal "${#lines[@]}" 3
    run jq -c '.http.request.body.content' <(exchanges "$LOG" | sed -n 3p)
    assert_output "$(jq -nc --arg j "$json" '$j')"
    run jq -s '[.[].httptape.connection.id] | unique | length' <(exchanges "$LOG")
    assert_output 1
}

@test "servers: 20 random bodies up to 1.5 MiB, plain and chunked, some pipelined, come back identical and are logged with exact sizes" {
    # 60 MB in well under a second on two busy cores: a 4 MiB ring (the
    # default) loses a few records in about one run in four (counted,
    # marked capture_gap, sizes still exact). This test is about framing
    # big bodies, so its ring is large enough for the whole burst.
    HTTPTAPE_RING_SIZE=32m start_echo
    run timeout 60 "$PY" "$APPS/random_bodies.py" "$PORT" 20260522
    assert_success                    # every echo had the sha256 of what was sent
    assert_equal "${#lines[@]}" 40
    sent=$output
    run jq -sc '[.[] | select(.sent_sha256 != .got_sha256 or .status != 200)] | length' <<<"$sent"
    assert_output 0
    wait_exchanges "$LOG" 40
    run count_exchanges "$LOG"
    assert_output 40
    # Per request (keyed by the i in its query): the method, both body sizes,
    # the framing of both messages, complete.
    want=$(jq -sc 'map({i: (.i|tostring), size, mode}) | sort_by(.i | tonumber)
                   | map([.i, .size, .size, .mode, .mode, true])' <<<"$sent")
    run jq -sc 'map([(.url.query | capture("i=(?<i>[0-9]+)").i), .http.request.body.size,
                     .http.response.body.size,
                     (if .http.request.header["transfer-encoding"] then "chunked" else "plain" end),
                     (if .http.response.header["transfer-encoding"] then "chunked" else "plain" end),
                     .httptape.complete])
                | sort_by(.[0] | tonumber)' <(exchanges "$LOG")
    assert_output "$want"
    # Some requests really were pipelined: request_index 1 on a connection.
    run jq -s '[.[] | select(.httptape.connection.request_index == 1)] | length' <(exchanges "$LOG")
    [ "$output" -ge 10 ]
    # The excerpt of a large body is its first 4096 bytes, marked truncated.
    run jq -c '[.http.request.body.truncated, .http.response.body.truncated]' \
        <(exchanges "$LOG" | jq -c 'select(.http.request.body.size > 4096)')
    refute_output --partial 'null'
    refute_output --partial 'false'
}

@test "servers: a file sent with os.sendfile from its file position is logged with source sendfile and its first 4096 bytes" {
    mkdir -p "$BATS_TEST_TMPDIR/files"
    head -c 300000 /dev/urandom >"$BATS_TEST_TMPDIR/files/f.bin"
    start_echo --files "$BATS_TEST_TMPDIR/files"
    # The app sends the body in two sendfile calls that take the file's own
    # position: the second half is right only if httptape left it alone.
    curl -s --max-time 10 -o "$BATS_TEST_TMPDIR/got" "$BASE/sendfile/f.bin"
    cmp "$BATS_TEST_TMPDIR/files/f.bin" "$BATS_TEST_TMPDIR/got"
    wait_exchanges "$LOG" 1
    run jq -c '[.http.response.status_code, .http.response.body.source, .http.response.body.size,
                .http.response.body.encoding, .http.response.body.truncated, .httptape.complete]' \
        <(exchanges "$LOG")
    assert_output '[200,"sendfile",300000,"base64",true,true]'
    exchanges "$LOG" | jq -r .http.response.body.content | base64 -d >"$BATS_TEST_TMPDIR/excerpt"
    cmp <(head -c 4096 "$BATS_TEST_TMPDIR/files/f.bin") "$BATS_TEST_TMPDIR/excerpt"
}

@test "servers: a body sent with splice is counted, marked body_not_captured, and the next exchange on the connection is whole" {
    mkdir -p "$BATS_TEST_TMPDIR/files"
    head -c 300000 /dev/urandom >"$BATS_TEST_TMPDIR/files/f.bin"
    start_echo --files "$BATS_TEST_TMPDIR/files"
    run curl -s --max-time 10 -o "$BATS_TEST_TMPDIR/got" -w '%{num_connects}' "$BASE/splice/f.bin" \
        --next -s --max-time 10 -w ' %{num_connects}' "$BASE/hello?size=30"
    assert_success
    # 1 new connection for the first, none for the second (30 bytes of /hello between).
    assert_output $'1hello from echo_server\nhello f 0'
    cmp "$BATS_TEST_TMPDIR/files/f.bin" "$BATS_TEST_TMPDIR/got"
    wait_exchanges "$LOG" 2
    run jq -c '[.url.path, .http.response.status_code, .http.response.body.size,
                (.http.response.body | has("content")), .httptape.complete, .httptape.gaps,
                .httptape.connection.request_index]' <(exchanges "$LOG")
    assert_line --index 0 '["/splice/f.bin",200,300000,false,false,["body_not_captured"],0]'
    assert_line --index 1 '["/hello",200,30,true,true,null,1]'
}
